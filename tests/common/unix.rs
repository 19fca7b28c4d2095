//! Helpers of the UNIX socket tests: a temporary directory per test, abstract names unique
//! to the test run, blocking std clients, and descriptors to pass (pipes holding some text).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use torsion::UnixAddress;

use super::CLIENT_TIMEOUT;

/// A directory of this test's own under the system's temporary directory, removed at the end.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("torsion-unix-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test's directory");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An abstract name no other test (or test run) uses.
pub fn abstract_name(test: &str) -> UnixAddress {
    UnixAddress::abstract_name(format!("torsion-test-{}-{test}", std::process::id()))
}

/// A blocking client of a socket file, with timeouts.
pub fn unix_client(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("client connects");
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// Writes `message` and reads as many bytes back.
pub fn unix_round_trip(stream: &mut UnixStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    back
}

/// Text written into a fresh pipe, and the pipe's read end to pass on.
pub fn pipe_holding(text: &str) -> OwnedFd {
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(text.as_bytes()).unwrap();
    OwnedFd::from(reader)
}

/// Reads what a received descriptor holds to its end.
pub fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    File::from(fd).read_to_string(&mut text).unwrap();
    text
}
