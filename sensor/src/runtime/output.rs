//! The live runtime's output: a bounded queue in front of a writer thread,
//! so that a reader of the records that stalls (a full pipe, a log shipper
//! that is down, a slow disk) never stops the capture (reliability target
//! S15).
//!
//! ```text
//!  capture loop ── record ─► JSON line ─► chunk ─┬─ room in the queue ─► channel ─► writer thread ─► sink
//!                                                └─ queue full ─► dropped, counted (output_queue_full)
//! ```
//!
//! Without it, a live capture whose output blocked stopped reading its
//! source: the kernel's buffers filled and dropped packets, and every
//! exchange that lost a packet came out damaged (`gap`), or not at all,
//! once the reader came back. With it the capture goes on, every exchange
//! is parsed whole, and the records that find the queue full are dropped
//! whole and counted: the newest are dropped, so what is written stays in
//! order and without holes inside it. A capture file is read as fast as its
//! output takes the records instead (on the reading thread): nothing is
//! lost by waiting there.
//!
//! The queue holds at most [`OutputLimits::records`] records and
//! [`OutputLimits::bytes`] bytes of JSON, counting the chunk being written.
//! At the end of a capture [`OutputQueue::finish`] waits up to
//! [`OutputLimits::drain`] for the writer to take what is queued (every
//! completed exchange is flushed when the reader keeps up); what it has not
//! written by then is counted as `output_unflushed`, and the process exits
//! without it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use shadowtap_proto::ExchangeRecord;

/// Default `--output-queue`: records waiting for the output at most.
pub const OUTPUT_QUEUE_RECORDS: usize = 10_000;

/// JSON bytes waiting for the output at most: about 2 500 records of the
/// bench capture (3.3 KB each on average, with their body shapes), 10 000
/// of 800 bytes.
pub const OUTPUT_QUEUE_BYTES: usize = 8 << 20;

/// Records are handed to the writer thread in chunks of about this many
/// bytes (or fewer, when the capture loop flushes: when idle, and at least
/// every [`super::live::FLUSH_INTERVAL`]).
pub const OUTPUT_CHUNK_BYTES: usize = 256 << 10;

/// How long the end of a capture waits for the output to take the queued
/// records.
pub const OUTPUT_DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// The queue's bounds. Bytes are counted as the chunks' allocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits {
    /// Records queued at most.
    pub records: usize,
    /// JSON bytes queued at most.
    pub bytes: usize,
    /// Longest wait for the output at the end.
    pub drain: Duration,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            records: OUTPUT_QUEUE_RECORDS,
            bytes: OUTPUT_QUEUE_BYTES,
            drain: OUTPUT_DRAIN_LIMIT,
        }
    }
}

/// What the output did, for the run's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputReport {
    /// Records the output took.
    pub written: u64,
    /// Records dropped because the queue was full.
    pub queue_full: u64,
    /// Records queued but not written when the drain limit passed.
    pub unflushed: u64,
    /// Most records queued at once.
    pub peak_records: usize,
}

/// A batch of JSON lines on its way to the writer thread.
struct Chunk {
    bytes: Vec<u8>,
    records: usize,
}

/// What the capture loop and the writer thread share.
struct Shared {
    queued_records: AtomicUsize,
    queued_bytes: AtomicUsize,
    written: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn dequeue(&self, chunk: &Chunk) {
        self.queued_records
            .fetch_sub(chunk.records, Ordering::AcqRel);
        self.queued_bytes
            .fetch_sub(chunk.bytes.capacity(), Ordering::AcqRel);
    }
}

/// The capture loop's end of the queue.
pub struct OutputQueue {
    limits: OutputLimits,
    shared: Arc<Shared>,
    sender: Option<Sender<Chunk>>,
    writer: Option<JoinHandle<()>>,
    /// Lines not yet handed over.
    chunk: Vec<u8>,
    chunk_records: usize,
    /// Records accepted (queued or written).
    accepted: u64,
    queue_full: u64,
    peak_records: usize,
}

impl OutputQueue {
    /// Starts the writer thread on `sink`; `name` names the output in errors.
    pub fn start(
        sink: Box<dyn Write + Send>,
        name: String,
        limits: OutputLimits,
    ) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            queued_records: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            written: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let (sender, receiver) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let writer = thread::Builder::new()
            .name("shadowtap-output".into())
            .spawn(move || write_chunks(sink, &name, &receiver, &thread_shared))?;
        Ok(OutputQueue {
            limits,
            shared,
            sender: Some(sender),
            writer: Some(writer),
            chunk: Vec::new(),
            chunk_records: 0,
            accepted: 0,
            queue_full: 0,
            peak_records: 0,
        })
    }

    /// Queues `record`, or drops and counts it when the queue is full.
    /// Returns whether it was queued.
    pub fn push(&mut self, record: &ExchangeRecord) -> bool {
        let start = self.chunk.len();
        record.write_json(&mut self.chunk);
        self.chunk.push(b'\n');
        let records = self.shared.queued_records.load(Ordering::Acquire) + self.chunk_records + 1;
        let bytes = self.shared.queued_bytes.load(Ordering::Acquire) + self.chunk.len();
        if records > self.limits.records || bytes > self.limits.bytes {
            self.chunk.truncate(start);
            self.queue_full += 1;
            return false;
        }
        self.chunk_records += 1;
        self.accepted += 1;
        self.peak_records = self.peak_records.max(records);
        if self.chunk.len() >= OUTPUT_CHUNK_BYTES {
            self.flush();
        }
        true
    }

    /// Hands the lines collected so far to the writer thread.
    pub fn flush(&mut self) {
        if self.chunk_records == 0 {
            return;
        }
        let mut bytes = std::mem::take(&mut self.chunk);
        // The queue is charged what the chunk holds: a chunk handed over
        // early (one record, when idle) must not keep a large buffer.
        bytes.shrink_to_fit();
        let chunk = Chunk {
            bytes,
            records: std::mem::take(&mut self.chunk_records),
        };
        self.shared
            .queued_records
            .fetch_add(chunk.records, Ordering::AcqRel);
        self.shared
            .queued_bytes
            .fetch_add(chunk.bytes.capacity(), Ordering::AcqRel);
        if let Some(sender) = &self.sender {
            if let Err(mpsc::SendError(chunk)) = sender.send(chunk) {
                // The writer has stopped on an error, which `error` reports.
                self.shared.dequeue(&chunk);
            }
        }
    }

    /// Records accepted so far (written or on their way).
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Records the output has taken so far.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Acquire)
    }

    /// Records dropped so far because the queue was full.
    pub fn queue_full(&self) -> u64 {
        self.queue_full
    }

    /// The output's error, once writing failed (the writer stops there).
    pub fn error(&self) -> Option<String> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return None;
        }
        self.shared
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Hands over what is left and waits, up to the drain limit, for the
    /// writer to write it all. Returns the report, or the output's error.
    pub fn finish(mut self) -> Result<OutputReport, (OutputReport, String)> {
        self.flush();
        // Closing the channel ends the writer's loop once it is empty.
        self.sender = None;
        let deadline = Instant::now() + self.limits.drain;
        if let Some(writer) = self.writer.take() {
            while !writer.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if writer.is_finished() {
                // The thread only returns; a panic in it is a bug to show.
                if let Err(panic) = writer.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            // Otherwise the writer is still blocked on the output: it is
            // left behind, and what it holds is counted as unflushed.
        }
        let written = self.written();
        let report = OutputReport {
            written,
            queue_full: self.queue_full,
            unflushed: self.accepted.saturating_sub(written),
            peak_records: self.peak_records,
        };
        match self.error() {
            Some(error) => Err((report, error)),
            None => Ok(report),
        }
    }
}

/// The writer thread: writes each chunk and flushes, until the channel
/// closes or the output fails.
fn write_chunks(
    mut sink: Box<dyn Write + Send>,
    name: &str,
    chunks: &Receiver<Chunk>,
    shared: &Shared,
) {
    for chunk in chunks {
        let result = sink.write_all(&chunk.bytes).and_then(|()| sink.flush());
        shared.dequeue(&chunk);
        match result {
            Ok(()) => {
                shared
                    .written
                    .fetch_add(chunk.records as u64, Ordering::AcqRel);
            }
            Err(error) => {
                *shared.error.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(format!("writing {name}: {error}"));
                shared.failed.store(true, Ordering::Release);
                return;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test_sinks {
    use std::io::{self, Write};
    use std::sync::{Arc, Condvar, Mutex};

    /// Whether the gate is open, and the bytes it took.
    type GateState = (bool, Vec<u8>);

    /// A sink that takes nothing until it is opened, then keeps every byte.
    #[derive(Clone, Default)]
    pub(crate) struct Gate {
        state: Arc<(Mutex<GateState>, Condvar)>,
    }

    impl Gate {
        pub(crate) fn open(&self) {
            let (lock, cv) = &*self.state;
            lock.lock().expect("gate").0 = true;
            cv.notify_all();
        }

        pub(crate) fn bytes(&self) -> Vec<u8> {
            self.state.0.lock().expect("gate").1.clone()
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.state;
            let mut state = cv
                .wait_while(lock.lock().expect("gate"), |(open, _)| !*open)
                .expect("gate");
            state.1.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink that fails every write, as a closed pipe does.
    pub(crate) struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_sinks::{Broken, Gate};
    use super::*;

    fn record(path: &str) -> ExchangeRecord {
        let line = r#"{"schema":1,"ts":"2026-11-24T00:00:00Z","client":"10.0.0.1:40000","server":"10.0.0.2:80","host":"api","method":"GET","path":"/","version":"1.1","request":{"headers":[],"body":{"framing":"none","wire_bytes":0,"bytes":0,"decoded_bytes":0}},"auth":{"scheme":"none"},"flags":{}}"#;
        let mut r: ExchangeRecord = serde_json::from_str(line).expect("a record");
        path.clone_into(&mut r.path);
        r
    }

    fn line_len(r: &ExchangeRecord) -> usize {
        let mut v = Vec::new();
        r.write_json(&mut v);
        v.len() + 1
    }

    fn paths(bytes: &[u8]) -> Vec<String> {
        String::from_utf8(bytes.to_vec())
            .expect("utf-8")
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                v["path"].as_str().expect("path").to_owned()
            })
            .collect()
    }

    fn limits(records: usize, bytes: usize) -> OutputLimits {
        OutputLimits {
            records,
            bytes,
            drain: Duration::from_millis(200),
        }
    }

    /// Waits until `cond` holds (the writer thread's progress).
    fn eventually(mut cond: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < until, "timed out");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_stalled_output_drops_the_newest_records_and_counts_them() {
        let gate = Gate::default();
        let mut q = OutputQueue::start(Box::new(gate.clone()), "gate".into(), limits(3, 1 << 20))
            .expect("starts");
        // The first is handed over and blocks the writer; two more fit.
        assert!(q.push(&record("/0")));
        q.flush();
        assert!(q.push(&record("/1")));
        assert!(q.push(&record("/2")));
        for i in 3..10 {
            assert!(!q.push(&record(&format!("/{i}"))), "record {i} queued");
        }
        assert_eq!((q.accepted(), q.queue_full(), q.written()), (3, 7, 0));
        q.flush();
        // The reader comes back: what was queued is written, in order, and
        // there is room again.
        gate.open();
        eventually(|| q.written() == 3);
        assert!(q.push(&record("/10")));
        let report = q.finish().expect("no error");
        assert_eq!(
            report,
            OutputReport {
                written: 4,
                queue_full: 7,
                unflushed: 0,
                peak_records: 3,
            }
        );
        assert_eq!(paths(&gate.bytes()), ["/0", "/1", "/2", "/10"]);
    }

    #[test]
    fn the_byte_bound_holds_too() {
        let gate = Gate::default();
        let line = line_len(&record("/a"));
        let mut q = OutputQueue::start(
            Box::new(gate.clone()),
            "gate".into(),
            limits(1000, 2 * line + 1),
        )
        .expect("starts");
        let queued = (0..5).filter(|_| q.push(&record("/a"))).count();
        assert_eq!(queued, 2);
        assert_eq!(q.queue_full(), 3);
        gate.open();
        let report = q.finish().expect("no error");
        assert_eq!((report.written, report.unflushed), (2, 0));
        assert_eq!(gate.bytes().len(), 2 * line);
    }

    #[test]
    fn an_output_that_never_comes_back_is_given_up_at_the_drain_limit() {
        let gate = Gate::default();
        let mut q = OutputQueue::start(Box::new(gate.clone()), "gate".into(), limits(4, 1 << 20))
            .expect("starts");
        for i in 0..6 {
            q.push(&record(&format!("/{i}")));
        }
        let started = Instant::now();
        let report = q.finish().expect("no error");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert_eq!(
            report,
            OutputReport {
                written: 0,
                queue_full: 2,
                unflushed: 4,
                peak_records: 4,
            }
        );
        // The writer is still blocked in the gate; let it go.
        gate.open();
    }

    #[test]
    fn a_failed_output_is_reported_with_its_name() {
        let mut q = OutputQueue::start(
            Box::new(Broken),
            "standard output".into(),
            limits(8, 1 << 20),
        )
        .expect("starts");
        q.push(&record("/a"));
        q.flush();
        eventually(|| q.error().is_some());
        let error = q.error().expect("an error");
        assert!(error.starts_with("writing standard output: "), "{error}");
        // Records after the failure go nowhere and are not counted as written.
        q.push(&record("/b"));
        let (report, error) = q.finish().expect_err("the error");
        assert!(error.contains("writing standard output"), "{error}");
        assert_eq!((report.written, report.unflushed), (0, 2));
    }
}
