//! The terminal, shared by progress bars, log lines and results.
//!
//! Every progress bar is drawn in one [`MultiProgress`] on stderr, and log lines go through
//! [`LogWriter`], which clears the bars, writes the line and redraws them: a warning emitted in the
//! middle of a run never lands inside a bar. `-q` hides the bars (indicatif also hides them when
//! stderr is not a terminal, so logs piped to a file hold no control codes). Results go to stdout
//! through [`stdout`], where a closed pipe (`glint-lda ingest ... | head -1`) ends the output
//! quietly instead of panicking.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::OnceLock;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Sets up the shared bars once, at start-up: hidden altogether when `quiet`.
pub fn init(quiet: bool) {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    // A second call keeps the first set-up.
    let _ = BARS.set(MultiProgress::with_draw_target(target));
}

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(MultiProgress::new)
}

/// A new bar of `len` steps (`None`: a spinner) in `style`, drawn with the others; never drawn
/// when `hidden` (a command's `--no-progress`) or under `-q`.
pub fn bar(len: Option<u64>, style: ProgressStyle, hidden: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden()).with_style(style);
    if hidden { bar } else { bars().add(bar) }
}

/// Writes with `f` to the locked standard output and flushes it. A closed pipe is the reader's
/// choice (`| head`), not an error: it ends the output and the command still succeeds.
pub fn stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match f(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to stdout"),
    }
}

/// `text` and a newline on standard output, as [`stdout`] writes.
pub fn print_line(text: impl Display) -> anyhow::Result<()> {
    stdout(|out| writeln!(out, "{text}"))
}

/// A status line on stderr, above the bars (shown whether or not stderr is a terminal).
pub fn note(text: impl Display) {
    bars().suspend(|| eprintln!("{text}"));
}

/// The `tracing` writer: each formatted event is written to stderr while the bars are cleared.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// One event's output (tracing-subscriber formats the whole event, then writes it at once).
#[derive(Debug)]
pub struct LogLine;

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine
    }
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        bars().suspend(|| io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
