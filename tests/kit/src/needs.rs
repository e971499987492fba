//! Tests that need something from the machine rather than from cargo: a server binary, a
//! browser. Such a test is a `libtest-mimic` trial (its file is a `harness = false` test
//! target), so that when the thing is missing the summary counts the test as ignored and
//! says why (`test NAME ... ignored (needs Redis: ...)`), instead of counting it as
//! passed. When the `CI` environment variable is set, a missing thing fails the test.

use libtest_mimic::{Completion, Failed, Trial};

/// A trial called `name` that looks for `what` with `find` when it runs, and runs `test`
/// with what it found. Without it, the trial is ignored with the reason, or fails under CI.
pub fn needs<T>(
    name: &str,
    what: &'static str,
    find: impl FnOnce() -> Result<T, String> + Send + 'static,
    test: impl FnOnce(T) + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || match find() {
        Ok(found) => {
            test(found);
            Ok(Completion::Completed)
        }
        Err(why) if in_ci() => Err(Failed::from(format!(
            "{what} is required when CI is set: {why}"
        ))),
        Err(why) => Ok(Completion::ignored_with(format!(
            "needs {what}: {why}; with CI=true this fails"
        ))),
    })
}

/// A trial called `name` that needs nothing but a runtime.
pub fn always(name: &str, test: impl FnOnce() + Send + 'static) -> Trial {
    Trial::test(name, move || {
        test();
        Ok(())
    })
}

/// A multi-threaded Tokio runtime for one trial, as `#[tokio::test(flavor =
/// "multi_thread", worker_threads = 2)]` makes.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// Whether `CI` is set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}
