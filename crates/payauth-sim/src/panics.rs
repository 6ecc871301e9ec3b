//! Panics in the simulation: every one is recorded (where and what) instead
//! of printed, and a caller's future is run under `catch_unwind`, so a
//! panic is a finding, not the end of the run.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

/// What the simulated token source says when it panics on purpose.
pub(crate) const INJECTED: &str = "payauth-sim: the token source panics (injected fault)";

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Records the panics of this thread from now on (others print as usual).
pub(crate) fn record_on_this_thread() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if RECORDING.get() && crate::clock::current_runtime().is_some() {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                SEEN.with_borrow_mut(|seen| seen.push(format!("{message}{place}")));
            } else {
                previous(info);
            }
        }));
    });
    RECORDING.set(true);
    SEEN.with_borrow_mut(Vec::clear);
}

/// Stops recording this thread's panics.
pub(crate) fn stop_recording() {
    RECORDING.set(false);
}

/// The panics recorded since the last call.
pub(crate) fn take() -> Vec<String> {
    SEEN.with_borrow_mut(std::mem::take)
}

/// A future whose panic is caught and returned as `Err(message)`.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned()))),
        }
    }
}
