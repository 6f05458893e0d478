//! Live capture with libpcap (cargo feature `libpcap`).
//!
//! One libpcap handle per interface, all non-blocking, merged into one
//! [`CaptureSource`]:
//!
//! ```text
//!  eth0 ─ pcap_t (non-blocking) ─┐
//!  any  ─ pcap_t (SLL2)          ├─ round robin ─► copy into one buffer ─► CapturedPacket<'_>
//!  ...  ─ pcap_t                 ┘   (poll(2) on every handle's fd when all are empty)
//! ```
//!
//! Reading follows the live-source contract of [`CaptureSource`]: when no
//! handle has a packet, `next_packet` waits in `poll(2)` for at most
//! [`POLL_INTERVAL_MS`] and returns `Ok(None)` if nothing came. Each packet
//! is copied into one reused buffer (at most the snapshot length), which
//! lets a packet be returned from whichever handle had one without holding
//! a borrow of the others; no allocation per packet.
//!
//! Timestamps are requested in nanoseconds. Each packet socket stamps a
//! frame as the kernel delivers it to that socket, so two captures of one
//! interface (this one and tcpdump's, say) see times a few microseconds
//! apart. `any` is opened with the `LINUX_SLL2` link type (it
//! carries the interface index); if the running libpcap cannot do that the
//! handle stays on `LINUX_SLL`, which the core decodes as well.

use std::cell::RefCell;
use std::io;

use ::pcap::{Active, Capture, Linktype, Precision};
use rustix::event::{PollFd, PollFlags, Timespec};

use shadowtap_proto::time::Timestamp;
use shadowtap_proto::wire::LinkType;

use super::caps::{self, Capability};
use super::{CaptureError, CaptureSource, CapturedPacket, MAX_RECORD_BYTES};

/// Default snapshot length, as tcpdump's: whole frames, up to the largest
/// record the file reader accepts ([`MAX_RECORD_BYTES`]).
pub const DEFAULT_SNAPLEN: u32 = MAX_RECORD_BYTES;

/// Default kernel buffer per interface, in KiB (`-B`). libpcap's own default
/// is 2 MiB; a sensor must ride out bursts while it is not scheduled. On the
/// project's 2-core VM a 2 GB transfer over veth at 0.9-1.6 GB/s lost a few
/// hundred frames with 8 MiB in most runs, none or a few hundred with 32 MiB,
/// none with 64 MiB (`docs/live-capture.md`, "Measured").
pub const DEFAULT_BUFFER_KIB: u32 = 32 * 1024;

/// Largest `-B` accepted: libpcap takes the size in bytes as an `int`.
pub const MAX_BUFFER_KIB: u32 = (i32::MAX as u32) / 1024;

/// Most interfaces one sensor opens (`-i` given this many times).
pub const MAX_INTERFACES: usize = 64;

/// Longest wait for a packet before `next_packet` returns `Ok(None)`; also
/// libpcap's read timeout, so a packet is handed over at most this long
/// after it arrived.
pub const POLL_INTERVAL_MS: u32 = 100;

/// The `any` pseudo-interface: every interface of the network namespace.
pub const ANY: &str = "any";

/// What to open.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Interface names (`any` for all), at most [`MAX_INTERFACES`].
    pub interfaces: Vec<String>,
    /// A tcpdump-style filter expression (pcap-filter(7)); `None` takes everything.
    pub filter: Option<String>,
    /// Bytes kept of each frame, 1..=[`MAX_RECORD_BYTES`].
    pub snaplen: u32,
    /// Kernel buffer per interface in KiB, 1..=[`MAX_BUFFER_KIB`].
    pub buffer_kib: u32,
    /// Put the interfaces into promiscuous mode (tcpdump's default; `-p` turns it off).
    pub promiscuous: bool,
}

impl LiveConfig {
    /// A configuration with the defaults for `interfaces`.
    pub fn new(interfaces: Vec<String>) -> Self {
        LiveConfig {
            interfaces,
            filter: None,
            snaplen: DEFAULT_SNAPLEN,
            buffer_kib: DEFAULT_BUFFER_KIB,
            promiscuous: true,
        }
    }
}

/// Why a live capture could not start. The messages are for people and
/// name the interface, the capability or the filter at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error(
        "capturing on {interface} needs the {missing} capability: run as root, or grant it to \
         the binary with `setcap cap_net_raw+ep PATH`"
    )]
    MissingCapability {
        interface: String,
        missing: Capability,
    },
    #[error(
        "{interface}: permission denied opening the capture ({message}); capturing needs the \
         CAP_NET_RAW capability"
    )]
    PermissionDenied { interface: String, message: String },
    #[error("no such interface: {0} (`ip link` lists them; `any` captures on all)")]
    NoSuchInterface(String),
    #[error("bad filter expression `{expression}` on {interface}: {message}")]
    BadFilter {
        expression: String,
        interface: String,
        message: String,
    },
    #[error("{interface}: cannot open a live capture: {message}")]
    Open { interface: String, message: String },
    #[error("no interface to capture on")]
    NoInterface,
    #[error("too many interfaces: {given} (at most {MAX_INTERFACES})")]
    TooManyInterfaces { given: usize },
    #[error("snapshot length {0} is outside 1..={MAX_RECORD_BYTES}")]
    BadSnaplen(u32),
    #[error("buffer size {0} KiB is outside 1..={MAX_BUFFER_KIB}")]
    BadBufferSize(u32),
}

/// Kernel-side loss of one handle, accumulated across the `u32` wrap of
/// libpcap's counters.
#[derive(Clone, Copy, Debug, Default)]
struct Loss {
    last_drop: u32,
    last_ifdrop: u32,
    drop: u64,
    ifdrop: u64,
}

struct Handle {
    name: String,
    link_type: LinkType,
    /// In a `RefCell` because libpcap's `pcap_stats` needs `&mut` and
    /// [`CaptureSource::drops`] has `&self`; never borrowed across calls.
    cap: RefCell<Capture<Active>>,
    loss: RefCell<Loss>,
}

impl Handle {
    fn refresh_loss(&self) -> Loss {
        let mut loss = self.loss.borrow_mut();
        if let Ok(stat) = self.cap.borrow_mut().stats() {
            loss.drop += u64::from(stat.dropped.wrapping_sub(loss.last_drop));
            loss.ifdrop += u64::from(stat.if_dropped.wrapping_sub(loss.last_ifdrop));
            loss.last_drop = stat.dropped;
            loss.last_ifdrop = stat.if_dropped;
        }
        *loss
    }
}

/// Header of the packet in [`PcapSource::buf`].
#[derive(Clone, Copy, Debug, Default)]
struct Current {
    ts: Timestamp,
    handle: usize,
    orig_len: u32,
}

/// Live capture on one or more interfaces through libpcap.
///
/// ```no_run
/// use shadowtap_sensor::capture::{CaptureSource, libpcap::{LiveConfig, PcapSource}};
///
/// let mut src = PcapSource::open(&LiveConfig::new(vec!["eth0".into()]))?;
/// loop {
///     match src.next_packet()? {
///         Some(p) => { let _ = (p.ts, p.link_type, p.data.len()); }
///         None => { /* idle for a poll interval */ }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PcapSource {
    handles: Vec<Handle>,
    /// The handle to try first next time (round robin across interfaces).
    next: usize,
    buf: Vec<u8>,
    current: Current,
    bytes: u64,
}

impl PcapSource {
    /// Checks the configuration and the capabilities, then opens and
    /// activates every interface and installs the filter on each.
    pub fn open(config: &LiveConfig) -> Result<PcapSource, OpenError> {
        if config.interfaces.is_empty() {
            return Err(OpenError::NoInterface);
        }
        if config.interfaces.len() > MAX_INTERFACES {
            return Err(OpenError::TooManyInterfaces {
                given: config.interfaces.len(),
            });
        }
        if config.snaplen == 0 || config.snaplen > MAX_RECORD_BYTES {
            return Err(OpenError::BadSnaplen(config.snaplen));
        }
        if config.buffer_kib == 0 || config.buffer_kib > MAX_BUFFER_KIB {
            return Err(OpenError::BadBufferSize(config.buffer_kib));
        }
        for name in &config.interfaces {
            if !interface_exists(name) {
                return Err(OpenError::NoSuchInterface(name.clone()));
            }
        }
        if let Some(&missing) = caps::missing(&[Capability::NET_RAW]).first() {
            return Err(OpenError::MissingCapability {
                interface: config.interfaces[0].clone(),
                missing,
            });
        }
        let handles = config
            .interfaces
            .iter()
            .map(|name| open_one(name, config))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PcapSource {
            handles,
            next: 0,
            buf: Vec::with_capacity(config.snaplen as usize),
            current: Current::default(),
            bytes: 0,
        })
    }

    /// The interfaces and their link types, e.g. `eth0 (EN10MB), any (LINUX_SLL2)`.
    pub fn describe(&self) -> String {
        self.handles
            .iter()
            .map(|h| {
                let dlt = i32::try_from(h.link_type.0).unwrap_or(-1);
                let name = Linktype(dlt)
                    .get_name()
                    .unwrap_or_else(|_| h.link_type.0.to_string());
                format!("{} ({name})", h.name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Copies the next packet of any handle into `buf`; false if none had one.
    fn read_any(&mut self) -> Result<bool, CaptureError> {
        let n = self.handles.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let handle = &self.handles[i];
            let mut cap = handle.cap.borrow_mut();
            match cap.next_packet() {
                Ok(packet) => {
                    let h = packet.header;
                    self.buf.clear();
                    self.buf.extend_from_slice(packet.data);
                    // Nanosecond precision: `tv_usec` holds nanoseconds.
                    let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
                    let nanos = u32::try_from(h.ts.tv_usec).unwrap_or(0);
                    self.current = Current {
                        ts: Timestamp::from_parts(secs, nanos),
                        handle: i,
                        orig_len: h.len,
                    };
                    self.bytes += u64::from(h.caplen);
                    self.next = (i + 1) % n;
                    return Ok(true);
                }
                Err(::pcap::Error::TimeoutExpired) => {}
                Err(error) => {
                    return Err(CaptureError::device(
                        &handle.name,
                        io::Error::other(error.to_string()),
                    ))
                }
            }
        }
        Ok(false)
    }

    /// Waits until a handle is readable or [`POLL_INTERVAL_MS`] passed.
    fn wait(&self) -> Result<(), CaptureError> {
        let caps: Vec<_> = self.handles.iter().map(|h| h.cap.borrow()).collect();
        let mut fds: Vec<PollFd<'_>> = caps
            .iter()
            .map(|c| PollFd::new(&**c, PollFlags::IN))
            .collect();
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(POLL_INTERVAL_MS) * 1_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            // EINTR: a signal (SIGINT, SIGTERM) arrived; let the runtime look.
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(errno) => Err(CaptureError::device(
                &self.handles[0].name,
                io::Error::from(errno),
            )),
        }
    }
}

impl CaptureSource for PcapSource {
    fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
        if !self.read_any()? {
            self.wait()?;
            if !self.read_any()? {
                return Ok(None);
            }
        }
        let c = self.current;
        Ok(Some(CapturedPacket {
            ts: c.ts,
            link_type: self.handles[c.handle].link_type,
            data: &self.buf,
            orig_len: c.orig_len,
            interface: c.handle as u32,
        }))
    }

    fn progress(&self) -> (u64, Option<u64>) {
        (self.bytes, None)
    }

    fn is_live(&self) -> bool {
        true
    }

    /// `ps_drop` (no room in the kernel buffer: the sensor fell behind) and
    /// `ps_ifdrop` (dropped by the interface or its driver), summed over
    /// the interfaces since they were opened.
    fn drops(&self) -> Vec<(&'static str, u64)> {
        let (mut drop, mut ifdrop) = (0, 0);
        for h in &self.handles {
            let loss = h.refresh_loss();
            drop += loss.drop;
            ifdrop += loss.ifdrop;
        }
        vec![("ps_drop", drop), ("ps_ifdrop", ifdrop)]
    }
}

/// True when `name` is `any` or an interface of this network namespace
/// (or when the OS has no `/sys/class/net` to ask; libpcap decides then).
fn interface_exists(name: &str) -> bool {
    if name == ANY {
        return true;
    }
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return false;
    }
    let class = std::path::Path::new("/sys/class/net");
    !class.is_dir() || class.join(name).exists()
}

fn open_one(name: &str, config: &LiveConfig) -> Result<Handle, OpenError> {
    let open_error = |error: ::pcap::Error| {
        let message = error.to_string();
        if message.contains("Operation not permitted") || message.contains("permission") {
            OpenError::PermissionDenied {
                interface: name.to_owned(),
                message,
            }
        } else if message.contains("No such device") {
            OpenError::NoSuchInterface(name.to_owned())
        } else {
            OpenError::Open {
                interface: name.to_owned(),
                message,
            }
        }
    };
    let snaplen =
        i32::try_from(config.snaplen).map_err(|_| OpenError::BadSnaplen(config.snaplen))?;
    let buffer = i32::try_from(u64::from(config.buffer_kib) * 1024)
        .map_err(|_| OpenError::BadBufferSize(config.buffer_kib))?;
    let timeout = i32::try_from(POLL_INTERVAL_MS).unwrap_or(i32::MAX);
    let mut cap = Capture::from_device(name)
        .map_err(open_error)?
        .snaplen(snaplen)
        .buffer_size(buffer)
        .promisc(config.promiscuous)
        .timeout(timeout)
        .precision(Precision::Nano)
        .open()
        .map_err(open_error)?;
    if name == ANY {
        // SLL2 carries the interface index; SLL (the default) is decoded too.
        let _ = cap.set_datalink(Linktype(LinkType::LINUX_SLL2.0 as i32));
    }
    if let Some(expression) = &config.filter {
        cap.filter(expression, true)
            .map_err(|error| OpenError::BadFilter {
                expression: expression.clone(),
                interface: name.to_owned(),
                message: filter_message(&error),
            })?;
    }
    let cap = cap.setnonblock().map_err(open_error)?;
    let dlt = cap.get_datalink().0;
    Ok(Handle {
        name: name.to_owned(),
        link_type: LinkType(u32::try_from(dlt).unwrap_or(u32::MAX)),
        cap: RefCell::new(cap),
        loss: RefCell::new(Loss::default()),
    })
}

/// libpcap's compile error without the crate's wrapping.
fn filter_message(error: &::pcap::Error) -> String {
    match error {
        ::pcap::Error::PcapError(message) => message.clone(),
        other => other.to_string(),
    }
}
