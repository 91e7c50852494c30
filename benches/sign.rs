//! Micro-benchmarks of the per-request costs that are not I/O: SigV4 signing through the
//! project's entry point (`sign::sign`), and one call of an exported `awsl_*` function
//! through the C ABI.
//!
//! `cargo bench --bench sign` (add `-- --quick` for a short run). Absolute times depend
//! on the machine; compare runs made on the same one.

// As in the library's root: every unsafe block says why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::hint::black_box;
use std::os::raw::{c_char, c_int};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_native::ffi::{awsl_ticket_take, AwslResponse, AWSL_DECLINED};
use aws_lambda_native::sign::{
    sign, sign_target, sign_with_aws_sigv4, Credentials, SigningConfig, Target,
};
use criterion::{criterion_group, criterion_main, Criterion};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const URI: &str =
    "https://abcdef1234.execute-api.us-east-1.amazonaws.com/prod/orders/42?expand=items&page=2";
const BODY: &[u8] = br#"{"order":42,"items":[{"sku":"A-1","qty":2}],"note":"leave at the door"}"#;

/// What the plugin signs for a typical POST through API Gateway: the client's headers
/// left after the unsigned ones (user-agent, x-forwarded-*, ...) are removed, and the
/// content-length the plugin sets.
const HEADERS: &[(&str, &str)] = &[
    ("accept", "application/json"),
    ("accept-encoding", "gzip, deflate, br"),
    ("content-type", "application/json; charset=utf-8"),
    ("content-length", "71"),
    ("x-request-id", "7f3c9b8e-2d4a-4e1b-9c6f-0a8d5e2b1c47"),
    ("x-tenant", "acme"),
];

fn signing(c: &mut Criterion) {
    let cfg = SigningConfig::new("us-east-1", "execute-api");
    let keys = Credentials::new("AKIDEXAMPLE", SECRET, None);
    let with_token = Credentials::new(
        "ASIAEXAMPLE",
        SECRET,
        Some("IQoJb3JpZ2luX2VjEXAMPLETOKEN/".repeat(20)),
    );
    // A fixed time inside one day, as a steady stream of requests sees it.
    let time = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    assert_eq!(BODY.len(), 71);

    let mut group = c.benchmark_group("sign");
    group.bench_function("typical POST, static keys", |b| {
        b.iter(|| {
            sign(
                black_box(&cfg),
                black_box(&keys),
                "POST",
                black_box(URI),
                black_box(HEADERS),
                black_box(BODY),
                black_box(time),
            )
            .unwrap()
        })
    });
    // What the request path did before sign_target: the uri formatted from the parts it
    // had built, then parsed back and its (canonical) query canonicalised again.
    let target = Target {
        tls: true,
        authority: "abcdef1234.execute-api.us-east-1.amazonaws.com",
        path: "/prod/orders/42",
        canonical_query: "expand=items&page=2",
    };
    group.bench_function(
        "typical POST, static keys, uri formatted then signed",
        |b| {
            b.iter(|| {
                let t = black_box(&target);
                let uri = format!("https://{}{}?{}", t.authority, t.path, t.canonical_query);
                sign(
                    black_box(&cfg),
                    black_box(&keys),
                    "POST",
                    &uri,
                    black_box(HEADERS),
                    black_box(BODY),
                    black_box(time),
                )
                .unwrap()
            })
        },
    );
    group.bench_function("typical POST, static keys, from parts (sign_target)", |b| {
        b.iter(|| {
            sign_target(
                black_box(&cfg),
                black_box(&keys),
                "POST",
                black_box(&target),
                black_box(HEADERS),
                black_box(BODY),
                black_box(time),
            )
            .unwrap()
        })
    });
    group.bench_function("typical POST, session token", |b| {
        b.iter(|| {
            sign(
                black_box(&cfg),
                black_box(&with_token),
                "POST",
                black_box(URI),
                black_box(HEADERS),
                black_box(BODY),
                black_box(time),
            )
            .unwrap()
        })
    });
    group.bench_function("typical POST, static keys, time now", |b| {
        b.iter(|| {
            sign(
                black_box(&cfg),
                black_box(&keys),
                "POST",
                black_box(URI),
                black_box(HEADERS),
                black_box(BODY),
                SystemTime::now(),
            )
            .unwrap()
        })
    });
    // The same through aws-sigv4 only (what `sign` did before the fast path).
    group.bench_function("aws-sigv4 only: typical POST, static keys", |b| {
        b.iter(|| {
            sign_with_aws_sigv4(
                black_box(&cfg),
                black_box(&keys),
                "POST",
                black_box(URI),
                black_box(HEADERS),
                black_box(BODY),
                black_box(time),
            )
            .unwrap()
        })
    });
    group.bench_function("aws-sigv4 only: typical POST, session token", |b| {
        b.iter(|| {
            sign_with_aws_sigv4(
                black_box(&cfg),
                black_box(&with_token),
                "POST",
                black_box(URI),
                black_box(HEADERS),
                black_box(BODY),
                black_box(time),
            )
            .unwrap()
        })
    });
    // A new credentials object per request: the key cache always misses (a refresh or
    // rotation on every request; the worst case of the fast path).
    group.bench_function(
        "typical POST, static keys, new credentials each time",
        |b| {
            b.iter(|| {
                let fresh = Credentials::new("AKIDEXAMPLE", SECRET, None);
                sign(
                    black_box(&cfg),
                    black_box(&fresh),
                    "POST",
                    black_box(URI),
                    black_box(HEADERS),
                    black_box(BODY),
                    black_box(time),
                )
                .unwrap()
            })
        },
    );
    group.finish();
}

/// An `extern "C"` function that does nothing: the cost of the call itself.
extern "C" fn noop(ticket: u32, _out: *mut AwslResponse, _buf: *mut c_char, _len: usize) -> c_int {
    black_box(ticket) as c_int
}

type TakeFn = unsafe extern "C" fn(u32, *mut AwslResponse, *mut c_char, usize) -> c_int;

/// One crossing of the C ABI as the Lua side makes it on every request
/// (`awsl_ticket_take`), called through a function pointer the compiler cannot see
/// through, with the worker started so that the call does its real work for an unknown
/// ticket: the panic guard, the worker lookup (pid check, an `Arc` clone), the ticket
/// table's lock and a miss. LuaJIT's own FFI marshalling is not in this figure.
fn ffi(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("awsl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    aws_lambda_native::bridge::start(&dir).expect("worker start");

    // SAFETY: AwslResponse is plain C data (integers), for which all-zero is valid;
    // zeroed rather than spelled out, so that a field added to it does not break this.
    let mut out: AwslResponse = unsafe { std::mem::zeroed() };
    let mut buf = [0 as c_char; 64];
    let mut group = c.benchmark_group("ffi");
    let take: TakeFn = black_box(awsl_ticket_take);
    group.bench_function("awsl_ticket_take, unknown ticket", |b| {
        b.iter(|| {
            // SAFETY: `out` and `buf` are valid for the call.
            let rc = unsafe {
                take(
                    black_box(0x7fff_fff0),
                    &mut out,
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            assert_eq!(rc, AWSL_DECLINED);
        })
    });
    let empty: TakeFn = black_box(noop);
    group.bench_function("empty extern \"C\" call (baseline)", |b| {
        // SAFETY: `noop` reads none of its pointers.
        b.iter(|| unsafe { empty(black_box(1), &mut out, buf.as_mut_ptr(), buf.len()) })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, signing, ffi);
criterion_main!(benches);
