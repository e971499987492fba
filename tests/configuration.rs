//! Both builds of a configuration: `try_build` returns every problem as a `BuildError`,
//! never panicking, and `build` panics with the same text.

use std::convert::Infallible;

use tower_health::{BuildError, BuildProblem, Builder, Check, Health, Paths, Probe};

fn check(name: &str) -> Check {
    Check::new(name.to_owned(), || async { Ok::<(), Infallible>(()) })
}

/// The message of the panic `f` raised, if it raised one.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> Option<String> {
    let payload = std::panic::catch_unwind(f).err()?;
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}

/// The error of `try_build`, checked to be what `build` panics with.
fn refused(builder: impl Fn() -> Builder + std::panic::RefUnwindSafe) -> BuildError {
    let error = match builder().try_build() {
        Ok(_) => panic!("the configuration was accepted"),
        Err(error) => error,
    };
    let message = panic_message(|| drop(builder().build())).expect("build() did not panic");
    assert_eq!(message, format!("tower-health: {error}"));
    error
}

fn name(name: &str) -> String {
    name.to_owned()
}

#[test]
fn every_reserved_name_is_refused_by_both_builds_with_the_name_in_the_error() {
    for reserved in ["readiness", "startup", "liveness", "lifecycle"] {
        let error = refused(|| Health::builder().check(check("db")).check(check(reserved)));
        assert_eq!(
            error.problems(),
            [BuildProblem::ReservedCheckName {
                name: name(reserved)
            }]
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("{reserved:?} is reserved")),
            "{message}"
        );
    }
}

#[test]
fn the_fallible_build_returns_an_error_for_each_invalid_configuration() {
    use BuildProblem::*;
    type Case = (
        &'static str,
        fn() -> Builder,
        Vec<BuildProblem>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a probe path without a leading '/'",
            || Health::builder().paths(Paths::kubernetes().liveness("livez")),
            vec![InvalidPath {
                probe: Probe::Liveness,
                path: name("livez"),
            }],
            "the livez path \"livez\" must start with '/'",
        ),
        (
            "a probe path ending with '/'",
            || Health::builder().paths(Paths::kubernetes().startup("/startupz/")),
            vec![InvalidPath {
                probe: Probe::Startup,
                path: name("/startupz/"),
            }],
            "not end with '/'",
        ),
        (
            "a probe path with a query",
            || Health::builder().paths(Paths::kubernetes().readiness("/readyz?x")),
            vec![InvalidPath {
                probe: Probe::Readiness,
                path: name("/readyz?x"),
            }],
            "without '?' or '#'",
        ),
        (
            "a probe path with a space",
            || Health::builder().paths(Paths::kubernetes().readiness("/ready z")),
            vec![InvalidPath {
                probe: Probe::Readiness,
                path: name("/ready z"),
            }],
            "only visible ASCII",
        ),
        (
            "two probes on one path",
            || Health::builder().paths(Paths::kubernetes().readiness("/livez")),
            vec![SharedPath {
                first: Probe::Liveness,
                second: Probe::Readiness,
                path: name("/livez"),
            }],
            "the livez and readyz probes share the path \"/livez\"",
        ),
        (
            "an empty check name",
            || Health::builder().check(check("")),
            vec![InvalidCheckName { name: name("") }],
            "the check name \"\" must be non-empty",
        ),
        (
            "a check name with a space",
            || Health::builder().check(check("a b")),
            vec![InvalidCheckName { name: name("a b") }],
            "the check name \"a b\" must be non-empty ASCII letters",
        ),
        (
            "a check name with a '/'",
            || Health::builder().check(check("a/b")),
            vec![InvalidCheckName { name: name("a/b") }],
            "\"a/b\"",
        ),
        (
            "a check name beyond ASCII",
            || Health::builder().check(check("é")),
            vec![InvalidCheckName { name: name("é") }],
            "\"é\"",
        ),
        (
            "a reserved check name",
            || Health::builder().check(check("lifecycle")),
            vec![ReservedCheckName {
                name: name("lifecycle"),
            }],
            "\"lifecycle\" is reserved",
        ),
        (
            "two checks with one name, told once however often it is given",
            || {
                Health::builder()
                    .check(check("a"))
                    .check(check("a"))
                    .check(check("a"))
            },
            vec![DuplicateCheckName { name: name("a") }],
            "two checks are named \"a\"",
        ),
        (
            "every problem at once, in the order of the configuration",
            || {
                Health::builder()
                    .paths(Paths::kubernetes().liveness("").readiness("/startupz"))
                    .check(check("readiness"))
                    .check(check("db"))
                    .check(check("a b"))
                    .check(check("db"))
            },
            vec![
                InvalidPath {
                    probe: Probe::Liveness,
                    path: name(""),
                },
                SharedPath {
                    first: Probe::Readiness,
                    second: Probe::Startup,
                    path: name("/startupz"),
                },
                ReservedCheckName {
                    name: name("readiness"),
                },
                InvalidCheckName { name: name("a b") },
                DuplicateCheckName { name: name("db") },
            ],
            "; two checks are named \"db\"",
        ),
    ];
    for (what, builder, problems, says) in cases {
        let error = refused(builder);
        assert_eq!(error.problems(), problems, "{what}");
        let message = error.to_string();
        assert!(message.contains(says), "{what}: {message}");
    }
}

#[cfg(feature = "grpc")]
#[test]
fn the_fallible_build_refuses_each_grpc_service_name_that_cannot_work() {
    use BuildProblem::*;
    let cases = [
        ("", InvalidGrpcService { name: name("") }),
        (
            "helloworld/Greeter",
            InvalidGrpcService {
                name: name("helloworld/Greeter"),
            },
        ),
        (
            "hello world",
            InvalidGrpcService {
                name: name("hello world"),
            },
        ),
        (
            "readiness",
            GrpcServiceIsProbe {
                name: name("readiness"),
            },
        ),
        ("db", GrpcServiceIsCheck { name: name("db") }),
        (
            "ops.Admin",
            DuplicateGrpcService {
                name: name("ops.Admin"),
            },
        ),
    ];
    for (service, problem) in cases {
        let error = refused(|| {
            Health::builder()
                .check(check("db"))
                .grpc_service("ops.Admin", Probe::Liveness)
                .grpc_service(service, Probe::Readiness)
        });
        assert_eq!(error.problems(), [problem], "{service:?}");
    }
}

#[test]
fn a_valid_configuration_builds_both_ways() {
    let builder = || {
        Health::builder()
            .paths(Paths::health())
            .check(check("db"))
            .check(check("cache.v2_a-b"))
    };
    let health = builder().try_build().expect("a valid configuration");
    assert_eq!(health.paths().path(Probe::Readiness), "/health/ready");
    drop(builder().build());
}

#[test]
fn a_refused_build_panics_at_the_caller_not_inside_the_crate() {
    let location = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = location.clone();
    // The hook is the process's: other tests' panics, on their own threads, pass it too.
    let this_test = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != this_test {
            return;
        }
        if let Some(at) = info.location() {
            *seen.lock().unwrap() = Some((at.file().to_owned(), at.line()));
        }
    }));
    let line = line!() + 1;
    let result = std::panic::catch_unwind(|| Health::builder().check(check("liveness")).build());
    std::panic::set_hook(previous);
    assert!(result.is_err());
    let (file, at) = location.lock().unwrap().clone().expect("a location");
    assert!(file.ends_with("configuration.rs"), "{file}");
    assert_eq!(at, line);
}
