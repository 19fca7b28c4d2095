//! The checkers, the portal and the failure delays.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

fn password(username: &str, password: &str) -> Credentials {
    Credentials::Password {
        username: username.into(),
        password: password.into(),
    }
}

const ALICE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const BOB: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

/// Users may log in except `banned`; the avatar is the user's name.
struct Names;

impl Realm for Names {
    type Avatar = String;
    fn avatar(&self, identity: &Identity) -> Option<String> {
        (identity.0 != "banned").then(|| identity.0.clone())
    }
}

#[test]
fn a_password_file_accepts_its_users_passwords_and_nothing_else() {
    let line = format!(
        "alice:{}\n# a comment\n\nbob:{}\n",
        hash_password("wonderland"),
        hash_password("builder")
    );
    let file = PasswordFile::parse(&line).unwrap();
    assert_eq!(file.len(), 2);
    assert_eq!(
        file.check(&password("alice", "wonderland")),
        Some(Identity("alice".into()))
    );
    assert_eq!(file.check(&password("alice", "builder")), None);
    assert_eq!(file.check(&password("carol", "wonderland")), None);
    assert_eq!(file.check(&Credentials::PeerUid(0)), None);
    assert!(!format!("{file:?}").contains("argon2"), "no hash in Debug");
}

#[test]
fn a_hash_is_salted_afresh_each_time() {
    let (one, two) = (hash_password("same"), hash_password("same"));
    assert!(one.starts_with("$argon2id$"), "{one}");
    assert_ne!(one, two);
}

#[test]
fn a_bad_password_file_names_the_line_and_what_is_wrong() {
    let hash = hash_password("x");
    for (text, line, says) in [
        ("alice".to_string(), 1, "NAME:HASH"),
        (
            format!("# ok\nalice:{hash}\nbob:plain-text"),
            3,
            "not a password hash",
        ),
        (format!("alice:{hash}\nalice:{hash}"), 2, "twice"),
        (format!(":{hash}"), 1, "name"),
    ] {
        match PasswordFile::parse(&text) {
            Err(PasswordFileError::Line { line: at, reason }) => {
                assert_eq!(at, line, "{text}");
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn in_memory_uids_and_certificates_check_their_own_kind() {
    let memory = InMemoryPasswords::new().user("alice", "secret");
    assert_eq!(
        memory.check(&password("alice", "secret")),
        Some(Identity("alice".into()))
    );
    assert_eq!(memory.check(&password("alice", "secreT")), None);
    assert_eq!(
        memory.check(&password("nobody", "")),
        None,
        "an unknown user with no password"
    );
    let uids = PeerUids::new().uid(1000, "alice");
    assert_eq!(
        uids.check(&Credentials::PeerUid(1000)),
        Some(Identity("alice".into()))
    );
    assert_eq!(uids.check(&Credentials::PeerUid(0)), None);
    let certs = Certificates::new().certificate(vec![1, 2, 3], "bob");
    assert_eq!(
        certs.check(&Credentials::Certificate(vec![1, 2, 3])),
        Some(Identity("bob".into()))
    );
    assert_eq!(certs.check(&Credentials::Certificate(vec![1, 2])), None);
    assert!(!format!("{:?}", password("a", "hunter2")).contains("hunter2"));
}

#[test]
fn constant_time_eq_compares_contents_and_lengths() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abc\0"));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn the_portal_fails_alike_for_every_reason_and_delays_repeated_failures_per_address() {
    let checker = InMemoryPasswords::new()
        .user("alice", "secret")
        .user("banned", "x");
    let mut portal = Portal::new(Names).with_checker(checker);
    let now = Instant::now();
    let ok = portal.login(&password("alice", "secret"), ALICE, now);
    assert_eq!(ok.outcome, Ok("alice".to_string()));
    // Wrong password, unknown user, a user the realm refuses: one failure, no reason.
    let failures: Vec<_> = [
        password("alice", "guess"),
        password("eve", "x"),
        password("banned", "x"),
    ]
    .iter()
    .map(|c| portal.login(c, BOB, now))
    .collect();
    assert!(failures.iter().all(|l| l.outcome == Err(LoginFailed)));
    let delays: Vec<_> = failures.iter().map(|l| l.answer_after).collect();
    assert_eq!(
        delays,
        [
            Duration::ZERO,
            Duration::from_millis(250),
            Duration::from_millis(500)
        ]
    );
    // Another address is not slowed by BOB's failures; a success clears BOB's count.
    assert_eq!(
        portal
            .login(&password("alice", "no"), ALICE, now)
            .answer_after,
        Duration::ZERO
    );
    assert_eq!(
        portal
            .login(&password("alice", "secret"), BOB, now)
            .answer_after,
        Duration::ZERO
    );
    assert_eq!(
        portal
            .login(&password("alice", "no"), BOB, now)
            .answer_after,
        Duration::ZERO
    );
}

#[test]
fn delays_double_up_to_their_cap_and_are_forgotten_after_a_quiet_while() {
    let mut delays = FailureDelays::new(
        Duration::from_millis(100),
        Duration::from_secs(1),
        Duration::from_secs(60),
        2,
    );
    let now = Instant::now();
    let seen: Vec<_> = (0..7).map(|_| delays.failed(ALICE, now)).collect();
    let ms = |n| Duration::from_millis(n);
    assert_eq!(
        seen,
        [
            ms(0),
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1000),
            ms(1000)
        ]
    );
    assert_eq!(
        delays.failed(ALICE, now + Duration::from_secs(61)),
        Duration::ZERO
    );
    // Bounded: a third address pushes the oldest out.
    delays.failed(BOB, now + Duration::from_secs(62));
    delays.failed(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now + Duration::from_secs(63),
    );
    assert_eq!(delays.failures(ALICE), 0);
    assert_eq!(delays.failures(BOB), 1);
}
