//! The control connection: one [`LineReceiver`] per client, reading commands and answering
//! them, logging in through the portal and running transfers on the passive data channel.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};
use torsion_reactor::{DisconnectReason, FileSegment};

use super::data::{self, SharedChannel, Transfer};
use super::files::{entries, list_line, mdtm, Denied, VirtualPath};
use super::Access;
use crate::cred::{Credentials, Portal, Realm};
use crate::ftp::{Command, CommandError, Reply, TransferType};
use crate::line::{LineContext, LineReceiver};

/// Where the client is in logging in.
enum Login {
    /// Waiting for `USER`.
    NoUser,
    /// `USER` given, waiting for `PASS`.
    User(String),
    /// A failed login's answer is being held back; commands wait.
    Answering,
    /// Logged in, with what the user may do.
    In(Access),
}

/// One client's control connection: its login, working directory and data channel. The
/// [`FtpServer`](super::FtpServer) runs one per client in a `LineProtocol`.
pub struct FtpSession<R: Realm<Avatar = Access>> {
    root: Rc<PathBuf>,
    data_timeout: Duration,
    portal: Rc<RefCell<Portal<R>>>,
    login: Login,
    cwd: VirtualPath,
    rest: u64,
    rename_from: Option<PathBuf>,
    /// The passive channel opened for the next transfer.
    channel: Option<SharedChannel>,
    /// The channel of the transfer under way (closed with this connection).
    transferring: Option<SharedChannel>,
    local_ip: Option<IpAddr>,
    peer_ip: Option<IpAddr>,
}

impl<R: Realm<Avatar = Access> + 'static> FtpSession<R> {
    pub(super) fn new(
        root: Rc<PathBuf>,
        data_timeout: Duration,
        portal: Rc<RefCell<Portal<R>>>,
    ) -> Self {
        FtpSession {
            root,
            data_timeout,
            portal,
            login: Login::NoUser,
            cwd: VirtualPath::default(),
            rest: 0,
            rename_from: None,
            channel: None,
            transferring: None,
            local_ip: None,
            peer_ip: None,
        }
    }

    fn command(&mut self, cx: &mut LineContext<'_, '_>, command: Command) -> Option<Reply> {
        match command {
            Command::User(name) => {
                self.login = Login::User(name);
                return Some(Reply::new(331, "Password required."));
            }
            Command::Pass(password) => return self.pass(cx, password),
            Command::Quit => {
                send(cx, Reply::new(221, "Goodbye."));
                cx.lose_connection();
                return None;
            }
            Command::Noop => return Some(Reply::new(200, "OK.")),
            Command::Syst => return Some(Reply::new(215, "UNIX Type: L8")),
            Command::Feat => {
                let features = [
                    "Features:",
                    " EPSV",
                    " PASV",
                    " SIZE",
                    " MDTM",
                    " REST STREAM",
                    " UTF8",
                    "End",
                ];
                return Some(Reply::multiline(211, features.map(String::from)));
            }
            Command::Opts(option) if option.eq_ignore_ascii_case("UTF8 ON") => {
                return Some(Reply::new(200, "UTF-8 is always on."));
            }
            Command::Opts(_) => return Some(Reply::new(501, "Option not understood.")),
            _ => {}
        }
        let Login::In(access) = self.login else {
            return Some(Reply::new(530, "Please log in with USER and PASS."));
        };
        Some(match command {
            Command::Pwd => Reply::new(
                257,
                format!("{} is the current directory.", quoted(&self.cwd)),
            ),
            Command::Cwd(arg) => self.cwd(&arg),
            Command::Cdup => self.cwd(".."),
            Command::Type(TransferType::Ascii) => Reply::new(200, "Type set to A."),
            Command::Type(TransferType::Image) => Reply::new(200, "Type set to I."),
            Command::ModeStream => Reply::new(200, "Mode set to S."),
            Command::StruFile => Reply::new(200, "Structure set to F."),
            Command::Pasv => self.passive(cx, false)?,
            Command::Epsv(_) => self.passive(cx, true)?,
            Command::Rest(offset) => {
                self.rest = offset;
                Reply::new(350, format!("Restarting at {offset}."))
            }
            Command::Size(arg) => match self.file(&arg) {
                Ok((_, metadata)) => Reply::new(213, metadata.len().to_string()),
                Err(reply) => reply,
            },
            Command::Mdtm(arg) => match self.file(&arg) {
                Ok((_, metadata)) => Reply::new(213, mdtm(&metadata)),
                Err(reply) => reply,
            },
            Command::List(arg) => self.listing(cx, arg, true),
            Command::Nlst(arg) => self.listing(cx, arg, false),
            Command::Retr(arg) => self.retr(cx, &arg),
            Command::Stor(arg) if access == Access::ReadWrite => self.stor(cx, &arg, false),
            Command::Appe(arg) if access == Access::ReadWrite => self.stor(cx, &arg, true),
            Command::Dele(arg) if access == Access::ReadWrite => match self.file(&arg) {
                Ok((path, _)) => done(fs::remove_file(path), 250, "File deleted."),
                Err(reply) => reply,
            },
            Command::Mkd(arg) if access == Access::ReadWrite => match self.new_name(&arg) {
                Ok((path, shown)) => done(
                    fs::create_dir(path),
                    257,
                    &format!("{} created.", quoted(&shown)),
                ),
                Err(reply) => reply,
            },
            Command::Rmd(arg) if access == Access::ReadWrite => match self.directory(&arg) {
                Ok(path) if path == *self.root => denied(Denied::Forbidden),
                Ok(path) => done(fs::remove_dir(path), 250, "Directory removed."),
                Err(reply) => reply,
            },
            Command::Rnfr(arg) if access == Access::ReadWrite => {
                match self
                    .cwd
                    .join(&arg)
                    .ok_or(Denied::Forbidden)
                    .and_then(|p| p.resolve(&self.root))
                {
                    Ok((path, _)) if path != *self.root => {
                        self.rename_from = Some(path);
                        Reply::new(350, "Ready for RNTO.")
                    }
                    Ok(_) => denied(Denied::Forbidden),
                    Err(denial) => denied(denial),
                }
            }
            Command::Rnto(arg) if access == Access::ReadWrite => match self.rename_from.take() {
                None => Reply::new(503, "RNFR first."),
                Some(from) => match self.new_name(&arg) {
                    Ok((to, _)) => done(fs::rename(from, to), 250, "Renamed."),
                    Err(reply) => reply,
                },
            },
            Command::Stor(_)
            | Command::Dele(_)
            | Command::Mkd(_)
            | Command::Rmd(_)
            | Command::Rnfr(_)
            | Command::Rnto(_)
            | Command::Appe(_) => Reply::new(550, "Permission denied: read-only."),
            Command::Abor => Reply::new(225, "No transfer to abort."),
            Command::Port(_) | Command::Eprt(_) => {
                Reply::new(502, "Active mode is not served; use PASV or EPSV.")
            }
            other => Reply::new(502, format!("{} is not implemented.", verb(&other))),
        })
    }

    fn pass(&mut self, cx: &mut LineContext<'_, '_>, password: String) -> Option<Reply> {
        let user = match std::mem::replace(&mut self.login, Login::NoUser) {
            Login::User(user) => user,
            Login::In(access) => {
                self.login = Login::In(access);
                return Some(Reply::new(503, "Already logged in."));
            }
            _ => return Some(Reply::new(503, "Send USER first.")),
        };
        if user.eq_ignore_ascii_case("anonymous") || user.eq_ignore_ascii_case("ftp") {
            self.login = Login::In(Access::ReadOnly);
            return Some(Reply::new(230, "Anonymous login, read-only."));
        }
        let now = cx.transport().reactor().now();
        let Some(peer) = self.peer_ip else {
            return Some(Reply::new(530, "Login incorrect."));
        };
        let credentials = Credentials::Password {
            username: user.clone(),
            password,
        };
        let login = self.portal.borrow_mut().login(&credentials, peer, now);
        match login.outcome {
            Ok(access) => {
                info!("ftp: {user} logged in from {peer}");
                self.login = Login::In(access);
                Some(Reply::new(230, "Logged in."))
            }
            Err(failed) => {
                warn!("ftp: login as {user:?} from {peer} failed");
                if login.answer_after == Duration::ZERO {
                    return Some(Reply::new(530, failed.to_string()));
                }
                // Commands wait until the answer is given, so none overtakes it.
                self.login = Login::Answering;
                cx.pause_producing();
                cx.call_later(login.answer_after, move |this: &mut Self, cx| {
                    this.login = Login::NoUser;
                    send(cx, Reply::new(530, failed.to_string()));
                    cx.resume_producing();
                });
                None
            }
        }
    }

    fn cwd(&mut self, arg: &str) -> Reply {
        let Some(target) = self.cwd.join(arg) else {
            return denied(Denied::Forbidden);
        };
        match target.resolve(&self.root) {
            Ok((_, metadata)) if metadata.is_dir() => {
                self.cwd = target;
                Reply::new(250, format!("Now in {}.", self.cwd.display()))
            }
            Ok(_) => Reply::new(550, "Not a directory."),
            Err(denial) => denied(denial),
        }
    }

    /// The regular file `arg` names.
    fn file(&self, arg: &str) -> Result<(PathBuf, fs::Metadata), Reply> {
        let target = self
            .cwd
            .join(arg)
            .ok_or_else(|| denied(Denied::Forbidden))?;
        match target.resolve(&self.root) {
            Ok((path, metadata)) if metadata.is_file() => Ok((path, metadata)),
            Ok(_) => Err(Reply::new(550, "Not a regular file.")),
            Err(denial) => Err(denied(denial)),
        }
    }

    /// The directory `arg` names.
    fn directory(&self, arg: &str) -> Result<PathBuf, Reply> {
        let target = self
            .cwd
            .join(arg)
            .ok_or_else(|| denied(Denied::Forbidden))?;
        match target.resolve(&self.root) {
            Ok((path, metadata)) if metadata.is_dir() => Ok(path),
            Ok(_) => Err(Reply::new(550, "Not a directory.")),
            Err(denial) => Err(denied(denial)),
        }
    }

    /// A name to create: its directory must exist inside the root; the name itself must not
    /// be a symlink (so a link cannot lead a write outside).
    fn new_name(&self, arg: &str) -> Result<(PathBuf, VirtualPath), Reply> {
        let target = self
            .cwd
            .join(arg)
            .ok_or_else(|| denied(Denied::Forbidden))?;
        let Some(name) = target.file_name() else {
            return Err(denied(Denied::Forbidden));
        };
        let parent = self.directory(&target.parent().display())?;
        let path = parent.join(name);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(denied(Denied::Forbidden));
        }
        Ok((path, target))
    }

    fn passive(&mut self, cx: &mut LineContext<'_, '_>, extended: bool) -> Option<Reply> {
        let (Some(local), Some(peer)) = (self.local_ip, self.peer_ip) else {
            return Some(Reply::new(425, "Cannot open a data connection."));
        };
        if !extended && !local.is_ipv4() {
            return Some(Reply::new(522, "PASV needs IPv4; use EPSV."));
        }
        let control = cx.transport().id();
        let reactor = cx.transport().reactor();
        if let Some(old) = self.channel.take() {
            data::close(&old, reactor);
        }
        match data::open(reactor, control, local, peer) {
            Ok((channel, port)) => {
                self.channel = Some(channel);
                Some(match local {
                    IpAddr::V4(ip) if !extended => {
                        Reply::passive(std::net::SocketAddrV4::new(ip, port))
                    }
                    _ => Reply::extended_passive(port),
                })
            }
            Err(e) => {
                warn!("ftp: cannot listen for a data connection on {local}: {e}");
                Some(Reply::new(425, "Cannot open a data connection."))
            }
        }
    }

    /// Starts `transfer` on the passive channel: `150`, and the channel answers when done.
    fn transfer(&mut self, cx: &mut LineContext<'_, '_>, transfer: Transfer, what: &str) -> Reply {
        let Some(channel) = self.channel.take() else {
            return Reply::new(425, "Use PASV or EPSV first.");
        };
        data::start(&channel, cx.transport().reactor(), transfer);
        if let Some(previous) = self.transferring.replace(channel.clone()) {
            data::close(&previous, cx.transport().reactor());
        }
        // A client that never connects must not hold the listener open for good.
        cx.call_later(self.data_timeout, move |this: &mut Self, cx| {
            if data::abandon_if_unconnected(&channel, cx.transport().reactor()) {
                this.transferring = None;
                send(cx, Reply::new(425, "No data connection came."));
            }
        });
        Reply::new(150, format!("Opening data connection for {what}."))
    }

    fn listing(&mut self, cx: &mut LineContext<'_, '_>, arg: Option<String>, long: bool) -> Reply {
        // `ls` options (`LIST -la`) are not paths.
        let arg = arg.filter(|arg| !arg.starts_with('-'));
        let target = match self.cwd.join(arg.as_deref().unwrap_or(".")) {
            Some(target) => target,
            None => return denied(Denied::Forbidden),
        };
        let (path, metadata) = match target.resolve(&self.root) {
            Ok(found) => found,
            Err(denial) => return denied(denial),
        };
        let listed = if metadata.is_dir() {
            match entries(&path) {
                Ok(entries) => entries,
                Err(_) => return denied(Denied::Forbidden),
            }
        } else {
            vec![(target.file_name().unwrap_or_default().to_string(), metadata)]
        };
        let mut text = String::new();
        for (name, metadata) in &listed {
            if long {
                text.push_str(&list_line(name, metadata));
            } else {
                text.push_str(name);
            }
            text.push_str("\r\n");
        }
        self.transfer(cx, Transfer::Bytes(text.into_bytes()), "the listing")
    }

    fn retr(&mut self, cx: &mut LineContext<'_, '_>, arg: &str) -> Reply {
        let offset = std::mem::take(&mut self.rest);
        let (path, metadata) = match self.file(arg) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(_) => return denied(Denied::Forbidden),
        };
        let len = metadata.len();
        let offset = offset.min(len);
        let segment = FileSegment::new(Arc::new(file), offset, len - offset);
        self.transfer(
            cx,
            Transfer::File(segment),
            &format!("{arg} ({} bytes)", len - offset),
        )
    }

    /// `STOR` (the file replaced) or `APPE` (`append`: added to its end).
    fn stor(&mut self, cx: &mut LineContext<'_, '_>, arg: &str, append: bool) -> Reply {
        self.rest = 0;
        if self.channel.is_none() {
            return Reply::new(425, "Use PASV or EPSV first.");
        }
        let (path, _) = match self.new_name(arg) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        let opened = OpenOptions::new()
            .write(true)
            .create(true)
            .append(append)
            .truncate(!append)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path);
        match opened {
            Ok(file) => self.transfer(cx, Transfer::Receive(file), arg),
            Err(e) => {
                warn!("ftp: cannot create {}: {e}", path.display());
                denied(Denied::Forbidden)
            }
        }
    }
}

impl<R: Realm<Avatar = Access> + 'static> LineReceiver for FtpSession<R> {
    fn connection_made(&mut self, cx: &mut LineContext<'_, '_>) {
        self.local_ip = cx.transport().local_addr().ok().map(|a| a.ip());
        self.peer_ip = cx.transport().peer_addr().ok().map(|a| a.ip());
        send(cx, Reply::new(220, "torsion FTP server ready."));
    }

    fn line_received(&mut self, cx: &mut LineContext<'_, '_>, line: &[u8]) {
        let reply = match Command::parse(line) {
            Ok(command) => self.command(cx, command),
            Err(CommandError::Unknown(verb)) if is_known_verb(&verb) => {
                Some(Reply::new(502, format!("{verb} is not implemented.")))
            }
            Err(error) => Some(Reply::new(error.code(), error.to_string())),
        };
        if let Some(reply) = reply {
            send(cx, reply);
        }
    }

    fn line_length_exceeded(&mut self, cx: &mut LineContext<'_, '_>, buffered: &[u8]) {
        warn!(
            "ftp: connection {}: command line longer than {} bytes, closing",
            cx.transport().id(),
            buffered.len().saturating_sub(1)
        );
        send(cx, Reply::new(500, "Command line too long."));
        cx.lose_connection();
    }

    fn connection_lost(&mut self, cx: &mut LineContext<'_, '_>, _reason: &DisconnectReason) {
        for channel in [self.channel.take(), self.transferring.take()]
            .into_iter()
            .flatten()
        {
            data::close(&channel, cx.transport().reactor());
        }
    }
}

fn send(cx: &mut LineContext<'_, '_>, reply: Reply) {
    cx.write(&reply.to_bytes());
}

fn denied(denial: Denied) -> Reply {
    Reply::new(550, denial.text())
}

/// `code text` if `result` is fine, else `550`.
fn done(result: std::io::Result<()>, code: u16, text: &str) -> Reply {
    match result {
        Ok(()) => Reply::new(code, text),
        Err(e) => Reply::new(550, format!("Failed: {}.", e.kind())),
    }
}

/// A path in `257` replies: in double quotes, a quote inside doubled (RFC 959 Appendix II).
fn quoted(path: &VirtualPath) -> String {
    format!("\"{}\"", path.display().replace('"', "\"\""))
}

/// A command's verb, for `502` replies.
fn verb(command: &Command) -> String {
    let debug = format!("{command:?}");
    let name = debug.split(['(', ' ']).next().unwrap_or_default();
    name.to_ascii_uppercase()
}

/// Verbs the parser reports as unknown but that are FTP's (`502`, not `500`).
fn is_known_verb(verb: &str) -> bool {
    const OTHERS: [&str; 8] = [
        "ACCT", "SMNT", "REIN", "STOU", "ALLO", "SITE", "MLST", "LPSV",
    ];
    OTHERS.iter().any(|known| verb.eq_ignore_ascii_case(known))
}
