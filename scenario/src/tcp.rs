//! TCP connections between callers and services, written as packets into a
//! time-ordered queue and drained to the pcap as packet time advances.
//!
//! The vantage point is next to the servers: a server's packets leave a
//! few microseconds after what triggers them, a client's arrive one
//! round-trip time after the server's packet they answer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;

use crate::pcap::{
    ethernet_header, ipv4_header, mac_for, tcp_header, PcapWriter, ACK, FIN, PSH, SYN,
};
use crate::rng::Rng;

/// Maximum segment size of every connection.
pub(crate) const MSS: usize = 1448;
/// Requests a server answers on one connection before closing it.
pub(crate) const MAX_REQUESTS_PER_CONNECTION: u32 = 100;
/// Server delayed-ACK timer: a request answered later than this gets a bare ACK first.
const DELAYED_ACK_NS: u64 = 40_000_000;
/// Gap between back-to-back segments of one message (≈1 Gbit/s for full segments).
const SEGMENT_GAP_NS: u64 = 12_000;
/// A server's turnaround for packets it sends right away.
const TURNAROUND_NS: u64 = 20_000;

/// A packet waiting for its time.
#[derive(Debug)]
struct Packet {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Rc<Vec<u8>>,
    range: (usize, usize),
}

/// A packet in the queue, ordered by time, then by creation.
#[derive(Debug)]
struct Queued {
    ts: u64,
    id: u64,
    packet: Packet,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.id) == (other.ts, other.id)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.id).cmp(&(other.ts, other.id))
    }
}

/// One open connection.
#[derive(Clone, Debug)]
struct Conn {
    port: u16,
    /// Next sequence numbers of client and server.
    cseq: u32,
    sseq: u32,
    /// No request may start before this (the previous exchange's last packet).
    busy_until: u64,
    requests: u32,
    /// Bumped on every use, so stale idle timers are ignored.
    generation: u32,
}

/// `(expiry, caller, service, port, generation)` of an idle connection.
type IdleTimer = (u64, usize, usize, u16, u32);

/// Where a request goes: a caller's connection to a service.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    caller: usize,
    service: usize,
    port: u16,
    /// Time of the first request byte.
    pub(crate) request_ns: u64,
    /// This is the connection's last request (the server closes after it).
    pub(crate) last: bool,
}

/// Per-caller facts the connection layer needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer {
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
    pub(crate) rtt_ns: u64,
    pub(crate) keep_alive: bool,
    pub(crate) idle_ns: u64,
}

/// All connections plus the packet queue, writing to a pcap.
pub(crate) struct Network<W: Write> {
    out: PcapWriter<W>,
    queue: BinaryHeap<Reverse<Queued>>,
    next_packet: u64,
    conns: HashMap<(usize, usize), Vec<Conn>>,
    timers: BinaryHeap<Reverse<IdleTimer>>,
    next_port: HashMap<usize, u16>,
    /// Peers by `(caller, service)`, for timers.
    peers: HashMap<(usize, usize), Peer>,
    pub(crate) connections: u64,
    scratch: Vec<u8>,
}

impl<W: Write> Network<W> {
    pub(crate) fn new(out: PcapWriter<W>) -> Self {
        Network {
            out,
            queue: BinaryHeap::new(),
            next_packet: 0,
            conns: HashMap::new(),
            timers: BinaryHeap::new(),
            next_port: HashMap::new(),
            peers: HashMap::new(),
            connections: 0,
            scratch: Vec::with_capacity(128),
        }
    }

    fn push(&mut self, ts: u64, packet: Packet) {
        let id = self.next_packet;
        self.next_packet += 1;
        self.queue.push(Reverse(Queued { ts, id, packet }));
    }

    fn control(
        &mut self,
        ts: u64,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
    ) {
        self.push(
            ts,
            Packet {
                src,
                dst,
                seq,
                ack,
                flags,
                payload: Rc::new(Vec::new()),
                range: (0, 0),
            },
        );
    }

    /// Closes idle connections whose timer ran out by `now`, then writes
    /// every queued packet up to `now`.
    pub(crate) fn advance(&mut self, now: u64, rng: &mut Rng) -> io::Result<()> {
        while let Some(&Reverse((expiry, caller, service, port, generation))) = self.timers.peek() {
            if expiry > now {
                break;
            }
            self.timers.pop();
            let Some(list) = self.conns.get_mut(&(caller, service)) else {
                continue;
            };
            let Some(pos) = list
                .iter()
                .position(|c| c.port == port && c.generation == generation)
            else {
                continue;
            };
            let conn = list.swap_remove(pos);
            if let Some(peer) = self.peers.get(&(caller, service)).copied() {
                self.close_idle(expiry, &peer, conn, rng);
            }
        }
        self.drain(now)
    }

    /// Writes every queued packet with a timestamp up to `now`.
    fn drain(&mut self, now: u64) -> io::Result<()> {
        while self.queue.peek().is_some_and(|q| q.0.ts <= now) {
            if let Some(Reverse(q)) = self.queue.pop() {
                self.write(q.ts, &q.packet)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, ts_ns: u64, p: &Packet) -> io::Result<()> {
        let payload = p.payload.get(p.range.0..p.range.1).unwrap_or_default();
        let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (p.src, p.dst) else {
            return Err(io::Error::other("the simulation is IPv4 only"));
        };
        let tcp = tcp_header(p.src, p.dst, p.seq, p.ack, p.flags, 0xffff, payload);
        // The IP identification only has to vary; derive it from the sequence number.
        let ip = ipv4_header(*src.ip(), *dst.ip(), 6, 20 + payload.len(), p.seq as u16);
        let eth = ethernet_header(mac_for(p.src.ip()), mac_for(p.dst.ip()), false);
        self.scratch.clear();
        self.scratch.extend_from_slice(&eth);
        self.scratch.extend_from_slice(&ip);
        self.scratch.extend_from_slice(&tcp);
        self.out
            .write_frame(ts_ns / 1000, &[&self.scratch, payload])
    }

    /// Picks (or opens) a connection for a request arriving at `now`.
    pub(crate) fn slot(
        &mut self,
        now: u64,
        caller: usize,
        service: usize,
        peer: Peer,
        rng: &mut Rng,
    ) -> Slot {
        self.peers.insert((caller, service), peer);
        if peer.keep_alive {
            if let Some(list) = self.conns.get_mut(&(caller, service)) {
                if let Some(c) = list.iter_mut().find(|c| c.busy_until <= now) {
                    c.busy_until = u64::MAX;
                    c.generation = c.generation.wrapping_add(1);
                    c.requests += 1;
                    return Slot {
                        caller,
                        service,
                        port: c.port,
                        request_ns: now,
                        last: c.requests >= MAX_REQUESTS_PER_CONNECTION,
                    };
                }
            }
        }
        let port = self.free_port(caller, service);
        let (cisn, sisn) = (rng.next_u64() as u32, rng.next_u64() as u32);
        let client = SocketAddr::new(peer.client.ip(), port);
        let server = peer.server;
        self.control(now, client, server, cisn, 0, SYN);
        self.control(
            now + TURNAROUND_NS,
            server,
            client,
            sisn,
            cisn.wrapping_add(1),
            SYN | ACK,
        );
        let ack_at = now + TURNAROUND_NS + peer.rtt_ns;
        self.control(
            ack_at,
            client,
            server,
            cisn.wrapping_add(1),
            sisn.wrapping_add(1),
            ACK,
        );
        self.connections += 1;
        self.conns.entry((caller, service)).or_default().push(Conn {
            port,
            cseq: cisn.wrapping_add(1),
            sseq: sisn.wrapping_add(1),
            busy_until: u64::MAX,
            requests: 1,
            generation: 0,
        });
        Slot {
            caller,
            service,
            port,
            request_ns: ack_at + 1000,
            last: !peer.keep_alive,
        }
    }

    fn free_port(&mut self, caller: usize, service: usize) -> u16 {
        let in_use: Vec<u16> = self
            .conns
            .get(&(caller, service))
            .map(|l| l.iter().map(|c| c.port).collect())
            .unwrap_or_default();
        let next = self
            .next_port
            .entry(caller)
            .or_insert(32_768 + (caller as u16 % 64) * 400);
        loop {
            let port = *next;
            *next = if *next >= 60_999 { 32_768 } else { *next + 1 };
            if !in_use.contains(&port) {
                return port;
            }
        }
    }

    /// Sends a request and its response on `slot`: `latency_ns` from the
    /// last request byte to the first response byte. Closes the connection
    /// after the response when `slot.last`, else arms its idle timer.
    pub(crate) fn exchange(
        &mut self,
        slot: Slot,
        peer: Peer,
        request: Vec<u8>,
        response: Vec<u8>,
        latency_ns: u64,
    ) {
        let key = (slot.caller, slot.service);
        let Some(pos) = self
            .conns
            .get(&key)
            .and_then(|l| l.iter().position(|c| c.port == slot.port))
        else {
            return;
        };
        let mut conn = self
            .conns
            .get_mut(&key)
            .map(|l| l[pos].clone())
            .unwrap_or_else(|| Conn {
                port: slot.port,
                cseq: 0,
                sseq: 0,
                busy_until: 0,
                requests: 0,
                generation: 0,
            });
        let client = SocketAddr::new(peer.client.ip(), slot.port);
        let server = peer.server;
        // Request, back to back.
        let request = Rc::new(request);
        let mut t = slot.request_ns;
        let mut off = 0;
        while off < request.len() {
            let end = (off + MSS).min(request.len());
            self.push(
                t,
                data(client, server, conn.cseq, conn.sseq, &request, off, end),
            );
            conn.cseq = conn.cseq.wrapping_add((end - off) as u32);
            off = end;
            t += SEGMENT_GAP_NS;
        }
        let request_done = t;
        if latency_ns > DELAYED_ACK_NS {
            self.control(
                request_done + DELAYED_ACK_NS,
                server,
                client,
                conn.sseq,
                conn.cseq,
                ACK,
            );
        }
        // Response, with a client ACK for every second segment and the last.
        let response = Rc::new(response);
        let mut t = request_done + latency_ns.max(TURNAROUND_NS);
        let mut last_ts = t;
        let mut off = 0;
        let mut segments = 0;
        while off < response.len() {
            let end = (off + MSS).min(response.len());
            self.push(
                t,
                data(server, client, conn.sseq, conn.cseq, &response, off, end),
            );
            conn.sseq = conn.sseq.wrapping_add((end - off) as u32);
            off = end;
            segments += 1;
            if segments % 2 == 0 || off == response.len() {
                let ack_ts = t + peer.rtt_ns;
                self.control(ack_ts, client, server, conn.cseq, conn.sseq, ACK);
                last_ts = last_ts.max(ack_ts);
            }
            t += SEGMENT_GAP_NS;
        }
        if slot.last {
            let conn = Conn {
                port: slot.port,
                ..conn
            };
            self.server_close(t + TURNAROUND_NS, &peer, &conn);
            if let Some(list) = self.conns.get_mut(&key) {
                list.swap_remove(pos);
            }
            return;
        }
        conn.busy_until = last_ts.max(t) + 1000;
        let expiry = conn.busy_until + peer.idle_ns;
        self.timers.push(Reverse((
            expiry,
            slot.caller,
            slot.service,
            slot.port,
            conn.generation,
        )));
        if let Some(c) = self.conns.get_mut(&key).and_then(|l| l.get_mut(pos)) {
            *c = conn;
        }
    }

    /// An idle connection's timer ran out: usually the client closes it,
    /// now and then the server's keep-alive timer fires first.
    fn close_idle(&mut self, at: u64, peer: &Peer, conn: Conn, rng: &mut Rng) {
        if rng.chance(0.2) {
            self.server_close(at, peer, &conn);
        } else {
            self.client_close(at, peer, &conn);
        }
    }

    /// The server's FIN at `at`, the client's FIN, the server's last ACK.
    fn server_close(&mut self, at: u64, peer: &Peer, conn: &Conn) {
        let (c, s) = (SocketAddr::new(peer.client.ip(), conn.port), peer.server);
        let (cseq, sseq) = (conn.cseq, conn.sseq);
        let cfin = at + peer.rtt_ns;
        self.control(at, s, c, sseq, cseq, FIN | ACK);
        self.control(cfin, c, s, cseq, sseq.wrapping_add(1), FIN | ACK);
        let last = (sseq.wrapping_add(1), cseq.wrapping_add(1));
        self.control(cfin + TURNAROUND_NS, s, c, last.0, last.1, ACK);
    }

    /// The client's FIN at `at`, the server's FIN, the client's last ACK.
    fn client_close(&mut self, at: u64, peer: &Peer, conn: &Conn) {
        let (c, s) = (SocketAddr::new(peer.client.ip(), conn.port), peer.server);
        let (cseq, sseq) = (conn.cseq, conn.sseq);
        let sfin = at + TURNAROUND_NS;
        self.control(at, c, s, cseq, sseq, FIN | ACK);
        self.control(sfin, s, c, sseq, cseq.wrapping_add(1), FIN | ACK);
        let last = (cseq.wrapping_add(1), sseq.wrapping_add(1));
        self.control(sfin + peer.rtt_ns, c, s, last.0, last.1, ACK);
    }

    /// Writes everything still queued (connections left open stay open,
    /// as in any capture that ends) and returns the pcap writer.
    pub(crate) fn finish(mut self) -> io::Result<PcapWriter<W>> {
        self.drain(u64::MAX)?;
        Ok(self.out)
    }
}

fn data(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    buf: &Rc<Vec<u8>>,
    from: usize,
    to: usize,
) -> Packet {
    Packet {
        src,
        dst,
        seq,
        ack,
        flags: PSH | ACK,
        payload: Rc::clone(buf),
        range: (from, to),
    }
}
