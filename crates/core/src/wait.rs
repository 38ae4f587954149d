//! Waiting for Entra by the clock. Entra is eventually consistent and throttles: a new object,
//! secret or redirect URI is usable seconds to minutes after the write that made it, and a busy
//! tenant keeps answering 429 for a while. Every such wait is a *duration* (a budget), never a
//! count of tries: the number of tries depends on how fast the answers come, the lag does not.
//!
//! The budgets come from the sources (reference §12 and terraform-provider-azuread's timeouts);
//! docs/ARCHITECTURE.md lists what each waits for. `ENTRA_SETUP_RETRY_MS` (tests, the demo)
//! shortens only the pause *between* tries, never a budget.

use std::time::Duration;

use rand::Rng;

const MINUTE: Duration = Duration::from_secs(60);

/// A new application, service principal, grant, assignment, synchronization job or credential
/// showing in reads and being accepted as a reference (Microsoft: "seconds to a few minutes";
/// terraform's create timeout: 5 min).
pub const REPLICATION: Duration = Duration::from_secs(5 * 60);
/// A throttled (429) or unavailable (502/503/504) Graph or login endpoint, waited out with its
/// `Retry-After` (Microsoft: "keep doing so"): 5 min, after which the tenant is too busy.
pub const THROTTLED: Duration = Duration::from_secs(5 * 60);
/// A new client secret or app accepted at the token endpoint, a new application permission in
/// app-only tokens (reference §5: "expect brief AADSTS7000215"; terraform polls addPassword for
/// up to 15 min; observed: minutes).
pub const NEW_CREDENTIAL: Duration = Duration::from_secs(5 * 60);
/// A gallery app made by instantiate becoming readable after a lost or 404 answer (terraform's
/// instantiate timeout: 10 min).
pub const INSTANTIATE: Duration = Duration::from_secs(10 * 60);
/// A new signing certificate in the app's federation metadata (reference §8b: "can take
/// minutes to show").
pub const METADATA: Duration = Duration::from_secs(5 * 60);
/// A removed client secret refused at the token endpoint (terraform waits for a removal to be
/// visible, reference §5; observed: the token service keeps accepting it for a while).
pub const REMOVED_CREDENTIAL: Duration = Duration::from_secs(5 * 60);
/// A redirect URI or Reply URL added to an app accepted by the login endpoints (AADSTS50011 /
/// AADSTS500113 until then; observed: up to minutes).
pub const NEW_REDIRECT: Duration = Duration::from_secs(5 * 60);

/// `ENTRA_SETUP_RETRY_MS`: the pause between tries for runs against the simulated tenant
/// (tests, the demo), which answers at once: the Graph backoff starts there, a new secret is
/// retried every two pauses, instantiate is looked for every pause. It never shortens a budget,
/// and is held to at most 30 s. Unset, the pauses are Entra's; `Retry-After` is always honoured.
pub fn pause_override() -> Option<Duration> {
    std::env::var("ENTRA_SETUP_RETRY_MS")
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(|ms: u64| Duration::from_millis(ms).min(Duration::from_secs(30)))
}

/// A duration in words: "5 min", "40 s".
pub fn span(d: Duration) -> String {
    if d >= MINUTE {
        format!("{} min", d.as_secs().div_ceil(60))
    } else {
        format!("{} s", d.as_secs().max(1))
    }
}

/// A budget in words: "up to 5 min", "up to 40 s".
pub fn up_to(budget: Duration) -> String {
    format!("up to {}", span(budget))
}

/// Told when a wait for Entra begins: what is awaited and the budget.
pub type Announcer = std::sync::Arc<dyn Fn(&str, Duration) + Send + Sync>;

tokio::task_local! {
    static ANNOUNCE: Announcer;
}

/// Runs `fut` with waits inside it (however deep: a Graph request's retries, a poll) told to
/// `announcer`, so a step's progress can say "Waiting for Entra to … — up to 5 min".
pub async fn announcing<F: std::future::Future>(announcer: Announcer, fut: F) -> F::Output {
    ANNOUNCE.scope(announcer, fut).await
}

/// Says that a wait for `what` begins, for at most `budget`, to whoever listens
/// ([`announcing`]); nothing when nobody does.
pub fn announce(what: &str, budget: Duration) {
    let _ = ANNOUNCE.try_with(|a| a(what, budget));
}

/// The pause before try `n + 1` (`n` ≥ 1) of an exponential backoff from `base`, at most `cap`,
/// with jitter (half to all of it), as reference §12 asks: 1, 2, 4 … s, capped at 30 s.
pub fn backoff(base: Duration, cap: Duration, n: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    exp.min(cap)
        .mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// How the pause between tries grows.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Exponential from `base`, capped, with jitter (half to all of it).
    Backoff { base: Duration, cap: Duration },
    /// The same pause every time.
    Every(Duration),
}

/// One wait for something to become true within a budget, by the clock.
///
/// ```ignore
/// let mut patience = Patience::backoff(wait::REPLICATION, base, cap);
/// loop {
///     if let Some(x) = look().await? { break x; }
///     if !patience.again().await { /* the budget passed */ }
/// }
/// ```
#[derive(Debug)]
pub struct Patience {
    started: tokio::time::Instant,
    budget: Duration,
    tries: u32,
    step: Step,
}

impl Patience {
    /// Exponential pauses (from `base`, at most `cap`, with jitter) within `budget`.
    pub fn backoff(budget: Duration, base: Duration, cap: Duration) -> Self {
        Self::with(budget, Step::Backoff { base, cap })
    }

    /// The same pause between tries within `budget`.
    pub fn every(budget: Duration, pause: Duration) -> Self {
        Self::with(budget, Step::Every(pause))
    }

    fn with(budget: Duration, step: Step) -> Self {
        Self {
            started: tokio::time::Instant::now(),
            budget,
            tries: 1,
            step,
        }
    }

    /// The pause before try `n + 1` (`n` ≥ 1).
    pub fn pause(&self, n: u32) -> Duration {
        match self.step {
            Step::Every(d) => d,
            Step::Backoff { base, cap } => backoff(base, cap, n),
        }
    }

    /// Pauses before the next try and says true, or says false at once when the budget has
    /// passed. The pause never runs past the budget, and the last try comes after the budget
    /// ran out, so a thing that shows up just in time is seen.
    pub async fn again(&mut self) -> bool {
        let left = self.budget.saturating_sub(self.started.elapsed());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(self.pause(self.tries).min(left)).await;
        self.tries += 1;
        true
    }

    /// Like [`Self::again`], but pauses `at_least` this long (a `Retry-After`), if the budget
    /// allows it.
    pub async fn again_after(&mut self, at_least: Duration) -> bool {
        let left = self.budget.saturating_sub(self.started.elapsed());
        if left.is_zero() || at_least > left {
            return false;
        }
        tokio::time::sleep(self.pause(self.tries).max(at_least).min(left)).await;
        self.tries += 1;
        true
    }

    /// Tries made so far (1 before the first [`Self::again`]).
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// Time since the wait began.
    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// The budget.
    pub fn budget(&self) -> Duration {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget is a duration: with a pause of a second the wait tries for the whole budget,
    /// however many tries that takes, and stops right after.
    #[tokio::test(start_paused = true)]
    async fn the_budget_is_a_duration_not_a_count() {
        let mut p = Patience::backoff(REPLICATION, Duration::from_secs(1), Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        while p.again().await {}
        assert_eq!(started.elapsed(), REPLICATION);
        assert!(p.tries() > 8, "{} tries", p.tries());
        let mut q = Patience::every(Duration::from_secs(60), Duration::from_secs(10));
        while q.again().await {}
        assert_eq!(q.tries(), 7, "a try at 0, 10, …, 60 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_longer_than_what_is_left_ends_the_wait_at_once() {
        let mut p = Patience::every(Duration::from_secs(10), Duration::from_millis(100));
        assert!(p.again_after(Duration::from_secs(4)).await);
        assert_eq!(p.waited(), Duration::from_secs(4));
        assert!(!p.again_after(Duration::from_secs(7)).await);
        assert_eq!(p.waited(), Duration::from_secs(4), "no pointless wait");
    }

    #[test]
    fn budgets_read_as_people_say_them() {
        assert_eq!(up_to(REPLICATION), "up to 5 min");
        assert_eq!(up_to(INSTANTIATE), "up to 10 min");
        assert_eq!(up_to(Duration::from_secs(40)), "up to 40 s");
        assert_eq!(up_to(Duration::from_secs(90)), "up to 2 min");
    }
}
