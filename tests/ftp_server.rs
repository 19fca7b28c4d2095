//! The FTP server against a real client: Python's `ftplib`, run as a child process while the
//! reactor serves on this thread. Without python3 the tests skip, saying so (under `CI=true`
//! they fail).

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::examples::run_to_end;
use common::machine::require_tool;
use torsion::protocols::cred::{Identity, InMemoryPasswords, Portal, Realm};
use torsion::protocols::ftp::server::{Access, FtpServer};
use torsion::Reactor;

/// `alice` may write; `bob` may only read.
struct Users;

impl Realm for Users {
    type Avatar = Access;

    fn avatar(&self, identity: &Identity) -> Option<Access> {
        match identity.0.as_str() {
            "alice" => Some(Access::ReadWrite),
            "bob" => Some(Access::ReadOnly),
            _ => None,
        }
    }
}

/// A fresh served directory: `hello.txt`, `sub/inner.txt`, and `escape`, a symlink to a
/// file outside it.
fn served_directory(name: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("torsion-ftp-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let root = base.join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("hello.txt"), b"hello, ftp world\n").unwrap();
    fs::write(root.join("sub/inner.txt"), b"inner").unwrap();
    fs::write(base.join("secret.txt"), b"not yours").unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape")).unwrap();
    (base, root)
}

/// Serves `root` and runs `script` (with the server's port as its argument) against it;
/// returns the script's output once it has exited.
fn run_client(root: &PathBuf, script: &str) -> String {
    run_client_with(root, script, |server| server)
}

/// [`run_client`], with the server changed by `configure` first.
fn run_client_with(
    root: &PathBuf,
    script: &str,
    configure: impl FnOnce(FtpServer<Users>) -> FtpServer<Users>,
) -> String {
    let portal = Portal::new(Users).with_checker(
        InMemoryPasswords::new()
            .user("alice", "s3cret")
            .user("bob", "hunter2"),
    );
    let mut reactor = Reactor::new().unwrap();
    let server = configure(FtpServer::new(root, portal).unwrap());
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), server)
        .unwrap()
        .local_addr()
        .port();
    let handle = reactor.handle();
    let script = script.to_string();
    let client = thread::spawn(move || {
        let outcome = run_to_end(Command::new("python3").args(["-c", &script, &port.to_string()]));
        handle.stop().unwrap();
        outcome
    });
    reactor.run().unwrap();
    let (status, stdout, stderr) = client.join().unwrap();
    assert!(status.success(), "{status}: {stdout}\n{stderr}");
    stdout
}

const ANONYMOUS: &str = r#"
import ftplib, io, socket, sys
port = int(sys.argv[1])
f = ftplib.FTP()
print(f.connect("127.0.0.1", port, timeout=10)[:3])
try:
    f.sendcmd("PWD")
except ftplib.error_perm as e:
    print("before login:", str(e)[:3])
print(f.login())
print(f.sendcmd("SYST"))
feat = f.sendcmd("FEAT")
print("feat:", all(x in feat for x in ["EPSV", "PASV", "SIZE", "MDTM", "REST STREAM", "UTF8"]))
print(f.pwd())
print(sorted(f.nlst()))
buf = io.BytesIO()
print(f.retrbinary("RETR hello.txt", buf.write))
print(repr(buf.getvalue()))
buf = io.BytesIO()
f.retrbinary("RETR hello.txt", buf.write, rest=7)
print(repr(buf.getvalue()))
print(f.size("hello.txt"))
lines = []
f.retrlines("LIST", lines.append)
print([line.split()[-1] for line in lines], lines[1][0], lines[2][0])
f.cwd("sub")
print(f.pwd(), f.nlst())
f.cwd("../../..")
print(f.pwd())
for command in ["SIZE escape", "SIZE ../../../etc/passwd", "STOR new.txt", "DELE hello.txt"]:
    try:
        f.sendcmd(command)
    except ftplib.error_perm as e:
        print(command, "->", str(e)[:3])
try:
    f.sendcmd("NLST")
except ftplib.error_temp as e:
    print("no data connection:", str(e)[:3])
try:
    f.sendcmd("XYZZY")
except ftplib.error_perm as e:
    print("unknown:", str(e)[:3])
# A data connection from another address is refused; the client's own still gets through.
host, data_port = ftplib.parse227(f.sendcmd("PASV"))
stranger = socket.socket()
stranger.bind(("127.0.0.2", 0))
stranger.connect((host, data_port))
stranger.settimeout(10)
print("stranger got:", stranger.recv(10))
data = socket.create_connection((host, data_port), timeout=10)
print(f.sendcmd("RETR sub/inner.txt")[:3])
print(data.makefile("rb").read())
print(f.voidresp())
print(f.quit())
"#;

#[test]
fn an_anonymous_ftplib_client_lists_and_downloads_inside_the_served_directory_only() {
    if require_tool("python3", "--version").is_none() {
        return;
    }
    let (base, root) = served_directory("anonymous");
    let out = run_client(&root, ANONYMOUS);
    let expected = "\
220
before login: 530
230 Anonymous login, read-only.
215 UNIX Type: L8
feat: True
/
['escape', 'hello.txt', 'sub']
226 Transfer complete.
b'hello, ftp world\\n'
b'ftp world\\n'
17
['escape', 'hello.txt', 'sub'] - d
/sub ['inner.txt']
/
SIZE escape -> 550
SIZE ../../../etc/passwd -> 550
STOR new.txt -> 550
DELE hello.txt -> 550
no data connection: 425
unknown: 500
stranger got: b''
150
b'inner'
226 Transfer complete.
221 Goodbye.
";
    assert_eq!(out, expected);
    fs::remove_dir_all(base).unwrap();
}

const NAMED: &str = r#"
import ftplib, io, socket, sys
port = int(sys.argv[1])
f = ftplib.FTP()
f.connect("127.0.0.1", port, timeout=10)
try:
    f.login("alice", "wrong")
except ftplib.error_perm as e:
    print("wrong password:", str(e)[:3])
print(f.login("alice", "s3cret"))
f.af = socket.AF_INET6  # makes ftplib use EPSV
print(f.storbinary("STOR up.txt", io.BytesIO(b"uploaded\n" * 1000)))
f.af = socket.AF_INET
print(f.size("up.txt"))
f.storbinary("APPE log.txt", io.BytesIO(b"one\n"))
f.storbinary("APPE log.txt", io.BytesIO(b"two\n"))
buf = io.BytesIO()
f.retrbinary("RETR log.txt", buf.write)
print(buf.getvalue())
buf = io.BytesIO()
f.retrbinary("RETR big.bin", buf.write)
print("big:", buf.getvalue() == bytes(range(256)) * 12289)
print(f.sendcmd("MKD made")[:3], f.sendcmd("RNFR up.txt")[:3], f.sendcmd("RNTO made/up.txt")[:3])
buf = io.BytesIO()
f.retrbinary("RETR made/up.txt", buf.write)
print(buf.getvalue() == b"uploaded\n" * 1000)
for command in ["STOR ../../outside.txt", "STOR escape"]:
    try:
        f.storbinary(command, io.BytesIO(b"x"))
        print(command, "stored")
    except ftplib.error_perm as e:
        print(command, "->", str(e)[:3])
f.quit()
g = ftplib.FTP()
g.connect("127.0.0.1", port, timeout=10)
print(g.login("bob", "hunter2"))
try:
    g.storbinary("STOR bob.txt", io.BytesIO(b"x"))
except ftplib.error_perm as e:
    print("bob stores:", str(e)[:3])
# A second failure from the address is answered after the portal's delay, and the
# commands sent behind it wait for that answer.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
replies = s.makefile("rb")
replies.readline()
s.sendall(b"USER alice\r\nPASS x\r\nUSER alice\r\nPASS y\r\nNOOP\r\n")
print("pipelined:", [replies.readline()[:3].decode() for _ in range(5)])
s.close()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.recv(100)
s.sendall(b"NOOP " + b"x" * 5000 + b"\r\n")
reply = s.makefile("rb").read()
print("too long:", reply[:3], reply.endswith(b"\r\n"))
"#;

#[test]
fn named_users_log_in_through_the_portal_and_only_writers_upload() {
    if require_tool("python3", "--version").is_none() {
        return;
    }
    let (base, root) = served_directory("named");
    // Over 3 MiB: sent in several windows.
    fs::write(
        root.join("big.bin"),
        (0..=255u8).collect::<Vec<_>>().repeat(12289),
    )
    .unwrap();
    let out = run_client(&root, NAMED);
    let expected = "\
wrong password: 530
230 Logged in.
226 Transfer complete.
9000
b'one\\ntwo\\n'
big: True
257 350 250
True
STOR ../../outside.txt stored
STOR escape -> 550
230 Logged in.
bob stores: 550
pipelined: ['331', '530', '331', '530', '200']
too long: b'500' True
";
    assert_eq!(out, expected);
    // `..` stayed inside the root; the symlink's target outside is untouched.
    assert!(root.join("outside.txt").exists());
    assert!(!base.join("outside.txt").exists());
    assert_eq!(fs::read(base.join("secret.txt")).unwrap(), b"not yours");
    fs::remove_dir_all(base).unwrap();
}

const NEVER_CONNECTS: &str = r#"
import ftplib, sys
f = ftplib.FTP()
f.connect("127.0.0.1", int(sys.argv[1]), timeout=10)
f.login()
host, data_port = ftplib.parse227(f.sendcmd("PASV"))
print(f.sendcmd("RETR hello.txt")[:3])
try:
    f.getresp()
except ftplib.error_temp as e:
    print("then:", str(e))
print(f.sendcmd("NOOP"))
"#;

#[test]
fn a_transfer_whose_data_connection_never_comes_is_answered_425() {
    if require_tool("python3", "--version").is_none() {
        return;
    }
    let (base, root) = served_directory("never");
    let out = run_client_with(&root, NEVER_CONNECTS, |server| {
        server.with_data_timeout(Duration::from_millis(100))
    });
    assert_eq!(out, "150\nthen: 425 No data connection came.\n200 OK.\n");
    fs::remove_dir_all(base).unwrap();
}
