//! Parsing FTP command lines (RFC 959 §4.1, §5.3; `AUTH`, `PBSZ`, `PROT` from RFC 2228;
//! `FEAT`, `OPTS` from RFC 2389; `EPRT`, `EPSV` from RFC 2428; `SIZE`, `MDTM`, `MLSD`, `REST`
//! from RFC 3659): a line without its `\r\n` in, a [`Command`] or the reason it is not one out.
//! Paths are UTF-8 (RFC 2640); the framer that splits lines bounds their length.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// `TYPE`'s representation types (RFC 959 §3.1.1): ASCII and image (binary) are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `TYPE A` (optionally `A N`): text, with `\r\n` line ends on the wire.
    Ascii,
    /// `TYPE I` (or `L 8`): bytes as they are.
    Image,
}

/// One command from the control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the command it is named for (RFC 959 §4.1)
pub enum Command {
    User(String),
    Pass(String),
    Quit,
    Noop,
    Syst,
    Feat,
    /// `OPTS` with its whole argument (e.g. `UTF8 ON`).
    Opts(String),
    Pwd,
    Cwd(String),
    Cdup,
    Type(TransferType),
    Pasv,
    /// `EPSV`, or `EPSV ALL` (`true`): from then on only `EPSV` opens data connections.
    Epsv(bool),
    Port(SocketAddr),
    Eprt(SocketAddr),
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Retr(String),
    Stor(String),
    Appe(String),
    Rest(u64),
    Size(String),
    Mdtm(String),
    Dele(String),
    Mkd(String),
    Rmd(String),
    Rnfr(String),
    Rnto(String),
    Abor,
    /// `AUTH` with its mechanism, upper-cased (`TLS`, `SSL`).
    Auth(String),
    Pbsz(u64),
    /// `PROT` with its level, upper-cased (`C` clear, `P` private).
    Prot(char),
    Stat(Option<String>),
    Help(Option<String>),
    /// `MODE S` and `STRU F`, the only ones served (RFC 959 §5.1's minimum).
    ModeStream,
    StruFile,
}

/// Why a line is not a command, and the reply code it calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// A verb no server here implements (`502`); unknown words too (`500`).
    Unknown(String),
    /// The verb is known but its argument is missing or malformed (`501`).
    Syntax(&'static str),
    /// A valid argument this server does not take (`504`): `TYPE E`, `MODE B`...
    Unsupported(&'static str),
    /// Not UTF-8 (`501`).
    NotUtf8,
}

impl CommandError {
    /// The reply code for this error.
    pub fn code(&self) -> u16 {
        match self {
            CommandError::Unknown(_) => 500,
            CommandError::Syntax(_) | CommandError::NotUtf8 => 501,
            CommandError::Unsupported(_) => 504,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(verb) => write!(f, "unknown command {verb:?}"),
            CommandError::Syntax(what) => write!(f, "syntax error: {what}"),
            CommandError::Unsupported(what) => write!(f, "not implemented: {what}"),
            CommandError::NotUtf8 => f.write_str("the command is not UTF-8"),
        }
    }
}

impl std::error::Error for CommandError {}

impl Command {
    /// Parses one command line (without its line end). The verb is case-insensitive and
    /// separated from its argument by one space; an argument keeps its inner and trailing
    /// spaces (a file name may have them).
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let line = std::str::from_utf8(line).map_err(|_| CommandError::NotUtf8)?;
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb, Some(argument)),
            None => (line, None),
        };
        let verb = verb.to_ascii_uppercase();
        let path = |what| required(argument, what).map(str::to_string);
        let optional = || argument.filter(|a| !a.is_empty()).map(str::to_string);
        Ok(match verb.as_str() {
            "USER" => Command::User(path("USER needs a name")?),
            // An empty password is a password (anonymous logins send any).
            "PASS" => Command::Pass(argument.unwrap_or_default().to_string()),
            "QUIT" => Command::Quit,
            "NOOP" => Command::Noop,
            "SYST" => Command::Syst,
            "FEAT" => Command::Feat,
            "OPTS" => Command::Opts(path("OPTS needs an option")?),
            "PWD" | "XPWD" => Command::Pwd,
            "CWD" | "XCWD" => Command::Cwd(path("CWD needs a directory")?),
            "CDUP" | "XCUP" => Command::Cdup,
            "TYPE" => Command::Type(transfer_type(argument)?),
            "MODE" => mode(argument)?,
            "STRU" => structure(argument)?,
            "PASV" => Command::Pasv,
            "EPSV" => match argument.map(str::to_ascii_uppercase).as_deref() {
                None | Some("") => Command::Epsv(false),
                Some("ALL") => Command::Epsv(true),
                Some(_) => return Err(CommandError::Unsupported("EPSV with a protocol")),
            },
            "PORT" => Command::Port(port(required(argument, "PORT needs h1,h2,h3,h4,p1,p2")?)?),
            "EPRT" => Command::Eprt(eprt(required(argument, "EPRT needs |proto|addr|port|")?)?),
            "LIST" => Command::List(optional()),
            "NLST" => Command::Nlst(optional()),
            "MLSD" => Command::Mlsd(optional()),
            "RETR" => Command::Retr(path("RETR needs a file")?),
            "STOR" => Command::Stor(path("STOR needs a file")?),
            "APPE" => Command::Appe(path("APPE needs a file")?),
            "REST" => Command::Rest(number(argument, "REST needs an offset")?),
            "SIZE" => Command::Size(path("SIZE needs a file")?),
            "MDTM" => Command::Mdtm(path("MDTM needs a file")?),
            "DELE" => Command::Dele(path("DELE needs a file")?),
            "MKD" | "XMKD" => Command::Mkd(path("MKD needs a directory")?),
            "RMD" | "XRMD" => Command::Rmd(path("RMD needs a directory")?),
            "RNFR" => Command::Rnfr(path("RNFR needs a name")?),
            "RNTO" => Command::Rnto(path("RNTO needs a name")?),
            "ABOR" => Command::Abor,
            "AUTH" => Command::Auth(path("AUTH needs a mechanism")?.to_ascii_uppercase()),
            "PBSZ" => Command::Pbsz(number(argument, "PBSZ needs a size")?),
            "PROT" => Command::Prot(protection(argument)?),
            "STAT" => Command::Stat(optional()),
            "HELP" => Command::Help(optional()),
            _ => return Err(CommandError::Unknown(printable(&verb))),
        })
    }
}

/// The argument, which must be there and not empty.
fn required<'a>(argument: Option<&'a str>, what: &'static str) -> Result<&'a str, CommandError> {
    argument
        .filter(|a| !a.is_empty())
        .ok_or(CommandError::Syntax(what))
}

/// A decimal number argument.
fn number(argument: Option<&str>, what: &'static str) -> Result<u64, CommandError> {
    let digits = required(argument, what)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Syntax(what));
    }
    digits.parse().map_err(|_| CommandError::Syntax(what))
}

fn transfer_type(argument: Option<&str>) -> Result<TransferType, CommandError> {
    let argument = required(argument, "TYPE needs A or I")?.to_ascii_uppercase();
    match argument.as_str() {
        "A" | "A N" => Ok(TransferType::Ascii),
        "I" | "L 8" => Ok(TransferType::Image),
        "E" | "E N" | "A T" | "A C" | "E T" | "E C" => Err(CommandError::Unsupported("TYPE")),
        _ => Err(CommandError::Syntax("TYPE needs A or I")),
    }
}

fn mode(argument: Option<&str>) -> Result<Command, CommandError> {
    match required(argument, "MODE needs S")?
        .to_ascii_uppercase()
        .as_str()
    {
        "S" => Ok(Command::ModeStream),
        "B" | "C" => Err(CommandError::Unsupported("MODE other than S")),
        _ => Err(CommandError::Syntax("MODE needs S")),
    }
}

fn structure(argument: Option<&str>) -> Result<Command, CommandError> {
    match required(argument, "STRU needs F")?
        .to_ascii_uppercase()
        .as_str()
    {
        "F" => Ok(Command::StruFile),
        "R" | "P" => Err(CommandError::Unsupported("STRU other than F")),
        _ => Err(CommandError::Syntax("STRU needs F")),
    }
}

fn protection(argument: Option<&str>) -> Result<char, CommandError> {
    match required(argument, "PROT needs C or P")?
        .to_ascii_uppercase()
        .as_str()
    {
        "C" => Ok('C'),
        "P" => Ok('P'),
        "S" | "E" => Err(CommandError::Unsupported("PROT other than C or P")),
        _ => Err(CommandError::Syntax("PROT needs C or P")),
    }
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2): six decimal bytes.
fn port(argument: &str) -> Result<SocketAddr, CommandError> {
    const WHAT: &str = "PORT needs h1,h2,h3,h4,p1,p2";
    let mut bytes = [0u8; 6];
    let mut fields = argument.split(',');
    for byte in &mut bytes {
        let field = fields.next().ok_or(CommandError::Syntax(WHAT))?.trim();
        if field.is_empty() || field.len() > 3 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CommandError::Syntax(WHAT));
        }
        *byte = field.parse().map_err(|_| CommandError::Syntax(WHAT))?;
    }
    if fields.next().is_some() {
        return Err(CommandError::Syntax(WHAT));
    }
    let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
    let port = u16::from_be_bytes([bytes[4], bytes[5]]);
    Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

/// `EPRT |1|132.235.1.2|6275|` (RFC 2428 §2): a delimiter of the sender's choice, the
/// protocol (1 IPv4, 2 IPv6), the address in its own protocol's text form, the port.
fn eprt(argument: &str) -> Result<SocketAddr, CommandError> {
    const WHAT: &str = "EPRT needs |proto|addr|port|";
    let delimiter = argument.chars().next().ok_or(CommandError::Syntax(WHAT))?;
    if !(delimiter.is_ascii_graphic()) {
        return Err(CommandError::Syntax(WHAT));
    }
    let fields: Vec<&str> = argument.split(delimiter).collect();
    let [empty_start, proto, address, port, empty_end] = fields[..] else {
        return Err(CommandError::Syntax(WHAT));
    };
    if !empty_start.is_empty() || !empty_end.is_empty() {
        return Err(CommandError::Syntax(WHAT));
    }
    let ip: IpAddr = address.parse().map_err(|_| CommandError::Syntax(WHAT))?;
    match (proto, ip) {
        ("1", IpAddr::V4(_)) | ("2", IpAddr::V6(_)) => {}
        ("1" | "2", _) => return Err(CommandError::Syntax(WHAT)),
        _ => return Err(CommandError::Unsupported("EPRT network protocol")),
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Syntax(WHAT));
    }
    let port: u16 = port.parse().map_err(|_| CommandError::Syntax(WHAT))?;
    Ok(SocketAddr::new(ip, port))
}

/// An unknown verb as it may be quoted back: at most 16 printable ASCII characters.
fn printable(verb: &str) -> String {
    verb.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, CommandError> {
        Command::parse(line.as_bytes())
    }

    #[test]
    fn verbs_are_case_insensitive_and_arguments_keep_their_spaces() {
        assert_eq!(
            parse("user anonymous"),
            Ok(Command::User("anonymous".into()))
        );
        assert_eq!(
            parse("RETR my file .txt "),
            Ok(Command::Retr("my file .txt ".into()))
        );
        assert_eq!(parse("Pwd"), Ok(Command::Pwd));
        assert_eq!(parse("XPWD"), Ok(Command::Pwd));
        assert_eq!(parse("PASS"), Ok(Command::Pass(String::new())));
        assert_eq!(parse("list"), Ok(Command::List(None)));
        assert_eq!(parse("LIST -la"), Ok(Command::List(Some("-la".into()))));
    }

    #[test]
    fn a_missing_argument_is_a_syntax_error_and_an_unknown_verb_is_500() {
        assert_eq!(parse("RETR").unwrap_err().code(), 501);
        assert_eq!(parse("RETR ").unwrap_err().code(), 501);
        assert_eq!(parse("CWD").unwrap_err().code(), 501);
        let unknown = parse("SITE CHMOD 777 x").unwrap_err();
        assert_eq!(unknown.code(), 500);
        assert_eq!(
            parse("\u{1b}[2J").unwrap_err(),
            CommandError::Unknown("[2J".into())
        );
        assert_eq!(
            Command::parse(b"RETR \xff").unwrap_err(),
            CommandError::NotUtf8
        );
    }

    #[test]
    fn type_mode_and_stru_take_what_is_served_and_refuse_the_rest_with_504() {
        assert_eq!(parse("TYPE I"), Ok(Command::Type(TransferType::Image)));
        assert_eq!(parse("type a"), Ok(Command::Type(TransferType::Ascii)));
        assert_eq!(parse("TYPE L 8"), Ok(Command::Type(TransferType::Image)));
        assert_eq!(parse("TYPE E").unwrap_err().code(), 504);
        assert_eq!(parse("TYPE X").unwrap_err().code(), 501);
        assert_eq!(parse("MODE S"), Ok(Command::ModeStream));
        assert_eq!(parse("MODE B").unwrap_err().code(), 504);
        assert_eq!(parse("STRU F"), Ok(Command::StruFile));
        assert_eq!(parse("STRU R").unwrap_err().code(), 504);
    }

    #[test]
    fn port_is_six_decimal_bytes() {
        assert_eq!(
            parse("PORT 127,0,0,1,4,1"),
            Ok(Command::Port("127.0.0.1:1025".parse().unwrap()))
        );
        for bad in [
            "PORT 127,0,0,1,4",
            "PORT 127,0,0,1,4,1,9",
            "PORT 256,0,0,1,4,1",
            "PORT 127,0,0,1,4,-1",
            "PORT 127,0,0,1,4,0001",
            "PORT a,b,c,d,e,f",
            "PORT",
        ] {
            assert_eq!(parse(bad).unwrap_err().code(), 501, "{bad}");
        }
    }

    #[test]
    fn eprt_takes_any_delimiter_and_checks_the_address_against_the_protocol() {
        assert_eq!(
            parse("EPRT |1|132.235.1.2|6275|"),
            Ok(Command::Eprt("132.235.1.2:6275".parse().unwrap()))
        );
        assert_eq!(
            parse("EPRT !2!::1!5282!"),
            Ok(Command::Eprt("[::1]:5282".parse().unwrap()))
        );
        assert_eq!(parse("EPRT |1|::1|5282|").unwrap_err().code(), 501);
        assert_eq!(parse("EPRT |3|1.2.3.4|5|").unwrap_err().code(), 504);
        for bad in [
            "EPRT |1|1.2.3.4|99999|",
            "EPRT |1|1.2.3.4|",
            "EPRT 1|1.2.3.4|5|",
            "EPRT",
        ] {
            assert_eq!(parse(bad).unwrap_err().code(), 501, "{bad}");
        }
    }

    #[test]
    fn rest_pbsz_prot_auth_and_epsv() {
        assert_eq!(parse("REST 1024"), Ok(Command::Rest(1024)));
        assert_eq!(parse("REST -1").unwrap_err().code(), 501);
        assert_eq!(parse("REST 99999999999999999999").unwrap_err().code(), 501);
        assert_eq!(parse("PBSZ 0"), Ok(Command::Pbsz(0)));
        assert_eq!(parse("PROT p"), Ok(Command::Prot('P')));
        assert_eq!(parse("PROT S").unwrap_err().code(), 504);
        assert_eq!(parse("AUTH tls"), Ok(Command::Auth("TLS".into())));
        assert_eq!(parse("EPSV"), Ok(Command::Epsv(false)));
        assert_eq!(parse("EPSV all"), Ok(Command::Epsv(true)));
        assert_eq!(parse("EPSV 2").unwrap_err().code(), 504);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let alphabet = [
            b'P', b'O', b'R', b'T', b' ', b',', b'|', b'1', b'9', 0xff, b'E',
        ];
        let mut line = Vec::new();
        for n in 0..alphabet.len().pow(5) {
            line.clear();
            let mut k = n;
            for _ in 0..5 {
                line.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            let _ = Command::parse(&line);
        }
    }
}
