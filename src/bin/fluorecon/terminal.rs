//! Progress on the terminal and Ctrl-C: a one-line progress bar on stderr when it is a
//! terminal (`[#####.....] 42% RL iteration 17/40`), sparse status lines otherwise (logs,
//! SLURM output files), and a cancel flag set by Ctrl-C.

use fluorecon::Progress;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Width of the bar in characters.
const BAR: usize = 20;
/// Minimum time between two redraws of the bar.
const REDRAW: Duration = Duration::from_millis(100);
/// Minimum time between two status lines when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Sets the returned flag on the first Ctrl-C; a second Ctrl-C quits at once (exit 130).
pub fn install_ctrlc() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            eprintln!("\nfluorecon: cancelled");
            std::process::exit(130);
        }
        eprintln!("\nfluorecon: cancelling… (press Ctrl-C again to quit at once)");
    });
    if let Err(e) = installed {
        eprintln!("fluorecon: warning: Ctrl-C will not cancel cleanly ({e})");
    }
    flag
}

/// The command line's [`Progress`]: progress bar or status lines on stderr, log lines on
/// stderr (each distinct line once), cancel from Ctrl-C.
pub struct CliProgress {
    cancel: Arc<AtomicBool>,
    tty: bool,
    width: usize,
    fraction: f32,
    status: String,
    prefix: String,
    last_draw: Option<Instant>,
    bar_shown: bool,
    /// Without a terminal: the next fraction (multiple of 10 %) that may print a line, when
    /// the last one is at least `LINE_EVERY` old, and whether lines are printed at all.
    next_line: f32,
    last_line: Instant,
    lines: bool,
    logged: HashSet<String>,
}

impl CliProgress {
    pub fn new(cancel: Arc<AtomicBool>) -> CliProgress {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|&w| w >= 40)
            .unwrap_or(80);
        CliProgress {
            cancel,
            tty: std::io::stderr().is_terminal(),
            width,
            fraction: 0.0,
            status: String::new(),
            prefix: String::new(),
            last_draw: None,
            bar_shown: false,
            next_line: 0.1,
            last_line: Instant::now(),
            lines: true,
            logged: HashSet::new(),
        }
    }

    /// Text put before every status ("c 2/3, t 1/5: ").
    pub fn set_prefix(&mut self, prefix: String) {
        self.prefix = prefix;
    }

    /// Starts a new, short task on the same bar ("writing out.tif"); without a terminal it
    /// prints no status lines.
    pub fn restart(&mut self, status: &str) {
        self.fraction = 0.0;
        self.lines = false;
        self.prefix.clear();
        self.status = status.to_string();
        self.last_draw = None;
        self.update();
    }

    /// Removes the bar from the terminal.
    pub fn finish(&mut self) {
        self.clear();
    }

    fn line(&self) -> String {
        let pct = (self.fraction * 100.0).round() as usize;
        let filled = ((self.fraction * BAR as f32).round() as usize).min(BAR);
        let text = format!(
            "[{}{}] {pct:>3}% {}{}",
            "#".repeat(filled),
            ".".repeat(BAR - filled),
            self.prefix,
            self.status
        );
        text.chars().take(self.width - 1).collect()
    }

    fn update(&mut self) {
        if self.tty {
            let due = match self.last_draw {
                None => true,
                Some(t) => t.elapsed() >= REDRAW,
            };
            if due || self.fraction >= 1.0 {
                self.draw();
            }
        } else if self.lines
            && self.fraction >= self.next_line
            && self.last_line.elapsed() >= LINE_EVERY
        {
            self.last_line = Instant::now();
            eprintln!(
                "fluorecon: {:>3.0}% {}{}",
                self.fraction * 100.0,
                self.prefix,
                self.status
            );
            self.next_line = ((self.fraction * 10.0).floor() + 1.0) / 10.0;
        }
    }

    fn draw(&mut self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\x1b[K", self.line());
        let _ = err.flush();
        self.bar_shown = true;
        self.last_draw = Some(Instant::now());
    }

    fn clear(&mut self) {
        if self.bar_shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.bar_shown = false;
        }
    }
}

impl Progress for CliProgress {
    fn fraction(&mut self, fraction: f32) {
        if fraction.is_finite() {
            self.fraction = fraction.clamp(0.0, 1.0);
            self.update();
        }
    }

    fn status(&mut self, message: &str) {
        if self.status != message {
            self.status = message.to_string();
            self.update();
        }
    }

    fn log(&mut self, message: &str) {
        // Every channel and frame logs the same device line: say it once.
        if !self.logged.insert(message.to_string()) {
            return;
        }
        let shown = self.bar_shown;
        self.clear();
        eprintln!("fluorecon: {message}");
        if shown {
            self.draw();
        }
    }

    fn cancelled(&mut self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}
