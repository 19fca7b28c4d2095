//! DNS messages (RFC 1035 §4), sans-I/O: queries encoded, responses decoded strictly. A
//! decoded message is whole and consistent or it is an error saying where it went wrong;
//! decoding never panics and allocates in proportion to the bytes it was given, whatever the
//! header's counts claim.

use std::error::Error;
use std::fmt;
use std::net::IpAddr;

use super::name::Name;
use super::record::{Question, Rcode, Record, RecordClass, RecordData, RecordType, Soa};

/// The fixed header's size.
pub const HEADER_LEN: usize = 12;

/// The largest message a plain UDP query may get back (RFC 1035 §4.2.1); a longer answer comes
/// truncated, with the TC bit, and is asked again over TCP.
pub const MAX_UDP_MESSAGE: usize = 512;

/// CNAME records followed from the question's name before giving up on the chain.
const MAX_CNAME_CHAIN: usize = 16;

/// The smallest resource record: the root name, then type, class, TTL and a zero RDLENGTH.
const MIN_RECORD_LEN: usize = 11;

/// The 12-byte header (RFC 1035 §4.1.1), without its counts (those follow the sections).
/// The Z, AD and CD bits are read as zero and written as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Matches a response to its query.
    pub id: u16,
    /// QR: this is a response.
    pub response: bool,
    /// The kind of query; 0 is a standard query.
    pub opcode: u8,
    /// AA: the answer comes from an authority for the zone.
    pub authoritative: bool,
    /// TC: the message was cut to fit a UDP datagram; ask again over TCP for the whole.
    pub truncated: bool,
    /// RD: the client asks the server to resolve recursively.
    pub recursion_desired: bool,
    /// RA: the server resolves recursively.
    pub recursion_available: bool,
    /// The outcome.
    pub rcode: Rcode,
}

impl Header {
    /// A standard query's header, recursion desired.
    pub fn query(id: u16) -> Header {
        Header {
            id,
            recursion_desired: true,
            ..Header::default()
        }
    }

    /// The header of a response to a query with header `query`: same id, opcode and RD.
    pub fn response_to(query: &Header, rcode: Rcode) -> Header {
        Header {
            id: query.id,
            response: true,
            opcode: query.opcode,
            recursion_desired: query.recursion_desired,
            recursion_available: true,
            rcode,
            ..Header::default()
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(
            u8::from(self.response) << 7
                | (self.opcode & 0x0F) << 3
                | u8::from(self.authoritative) << 2
                | u8::from(self.truncated) << 1
                | u8::from(self.recursion_desired),
        );
        out.push(u8::from(self.recursion_available) << 7 | (self.rcode.0 & 0x0F));
    }

    fn decode(bytes: [u8; 4]) -> Header {
        let [id_high, id_low, flags, codes] = bytes;
        Header {
            id: u16::from_be_bytes([id_high, id_low]),
            response: flags & 0x80 != 0,
            opcode: (flags >> 3) & 0x0F,
            authoritative: flags & 0x04 != 0,
            truncated: flags & 0x02 != 0,
            recursion_desired: flags & 0x01 != 0,
            recursion_available: codes & 0x80 != 0,
            rcode: Rcode(codes & 0x0F),
        }
    }
}

/// A section of a message, to say where a decoding error was found. In header order (the
/// discriminant indexes the header's counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The question section.
    Question,
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section.
    Additional,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Question => "question",
            Section::Answer => "answer",
            Section::Authority => "authority",
            Section::Additional => "additional",
        })
    }
}

/// Why bytes are not a well-formed DNS message: always the sender's fault. Offsets count
/// from the start of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The message ends in the middle of a field (the header, a name, a record).
    Truncated {
        /// Where the missing bytes should have been.
        at: usize,
    },
    /// The header announces more entries in a section than the message holds: it ends
    /// cleanly after `found` of them.
    CountMismatch {
        /// The section.
        section: Section,
        /// The count in the header.
        announced: u16,
        /// The entries actually there.
        found: u16,
    },
    /// Bytes follow the last entry the header announced.
    TrailingBytes {
        /// Where the extra bytes start.
        at: usize,
    },
    /// A label length byte with the reserved top bits `01` or `10` (RFC 1035 §4.1.4; the
    /// extended label types of RFC 6891 are not used by queries this crate sends).
    BadLabelType {
        /// Where the byte is.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// A compression pointer to the header or past the end of the message.
    PointerOutOfRange {
        /// Where the pointer is.
        at: usize,
        /// Where it points.
        target: usize,
    },
    /// A compression pointer that points forwards: a name may only point to an earlier one.
    PointerForward {
        /// Where the pointer is.
        at: usize,
        /// Where it points.
        target: usize,
    },
    /// A compression pointer back to a place the same name already went through: following
    /// it would never end.
    PointerLoop {
        /// Where the pointer is.
        at: usize,
        /// Where it points.
        target: usize,
    },
    /// A name follows more compression pointers than any real name needs.
    TooManyPointers {
        /// Where the pointer past the limit is.
        at: usize,
    },
    /// A name longer than 255 bytes once its pointers are followed.
    NameTooLong {
        /// Where the name starts.
        at: usize,
    },
    /// A record's RDATA does not fit its type (an A record that is not 4 bytes, a CNAME whose
    /// name does not end where its RDATA does, ...).
    BadRdata {
        /// Where the RDATA starts.
        at: usize,
        /// The record's type.
        rtype: RecordType,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Truncated { at } => write!(f, "DNS message truncated at byte {at}"),
            MessageError::CountMismatch {
                section,
                announced,
                found,
            } => write!(
                f,
                "DNS header announces {announced} {section} entries, message holds {found}"
            ),
            MessageError::TrailingBytes { at } => write!(
                f,
                "DNS message has bytes after its last announced entry, from byte {at}"
            ),
            MessageError::BadLabelType { at, byte } => {
                write!(
                    f,
                    "DNS name has a reserved label type {byte:#04x} at byte {at}"
                )
            }
            MessageError::PointerOutOfRange { at, target } => write!(
                f,
                "DNS compression pointer at byte {at} points outside the message body, to {target}"
            ),
            MessageError::PointerForward { at, target } => write!(
                f,
                "DNS compression pointer at byte {at} points forwards, to {target}"
            ),
            MessageError::PointerLoop { at, target } => write!(
                f,
                "DNS compression pointer at byte {at} loops back to {target}"
            ),
            MessageError::TooManyPointers { at } => write!(
                f,
                "DNS name follows too many compression pointers (at byte {at})"
            ),
            MessageError::NameTooLong { at } => {
                write!(f, "DNS name at byte {at} is longer than 255 bytes")
            }
            MessageError::BadRdata { at, rtype } => {
                write!(f, "DNS {rtype} record has malformed data at byte {at}")
            }
        }
    }
}

impl Error for MessageError {}

/// A whole DNS message.
///
/// ```
/// use std::net::Ipv4Addr;
/// use torsion_protocols::dns::{Header, Message, Name, Question, Rcode, Record, RecordData, RecordType};
///
/// let name = Name::from_ascii("example.com").unwrap();
/// let query = Message::query(0x1234, name.clone(), RecordType::A);
/// let wire = query.encode();
/// assert_eq!(Message::decode(&wire).unwrap(), query);
///
/// let mut response = Message::response_to(&query, Rcode::NO_ERROR);
/// let address = RecordData::A(Ipv4Addr::new(93, 184, 215, 14));
/// response.answers.push(Record::new(name.clone(), 300, address));
/// let decoded = Message::decode(&response.encode()).unwrap();
/// let answer = decoded.addresses(&query.questions[0]);
/// assert_eq!(answer.addresses, [Ipv4Addr::new(93, 184, 215, 14)]);
/// assert_eq!(answer.ttl, Some(300));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The question section (one question in practice).
    pub questions: Vec<Question>,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
    /// The additional section.
    pub additional: Vec<Record>,
}

/// What a response says about the addresses of one question's name, CNAMEs followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressAnswer {
    /// The addresses, in the order of the answer section.
    pub addresses: Vec<IpAddr>,
    /// The name the addresses belong to, after the CNAME chain.
    pub canonical_name: Name,
    /// The smallest TTL of the records used (the CNAMEs and the addresses); `None` when the
    /// answer holds no address.
    pub ttl: Option<u32>,
}

impl Message {
    /// A standard query for `qtype` records of `name`, class IN, recursion desired.
    pub fn query(id: u16, name: Name, qtype: RecordType) -> Message {
        Message {
            header: Header::query(id),
            questions: vec![Question::new(name, qtype)],
            ..Message::default()
        }
    }

    /// An empty response to `query`: its header's id, opcode and RD, and its questions.
    pub fn response_to(query: &Message, rcode: Rcode) -> Message {
        Message {
            header: Header::response_to(&query.header, rcode),
            questions: query.questions.clone(),
            ..Message::default()
        }
    }

    /// The message on the wire, names uncompressed. A section of more than 65,535 entries
    /// is cut to its first 65,535 (no real message comes near).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_UDP_MESSAGE);
        self.header.encode(&mut out);
        let count = |len: usize| u16::try_from(len).unwrap_or(u16::MAX);
        let counts = [
            count(self.questions.len()),
            count(self.answers.len()),
            count(self.authority.len()),
            count(self.additional.len()),
        ];
        for c in counts {
            out.extend_from_slice(&c.to_be_bytes());
        }
        for question in self.questions.iter().take(counts[0].into()) {
            out.extend_from_slice(question.name.as_wire());
            out.extend_from_slice(&question.qtype.0.to_be_bytes());
            out.extend_from_slice(&question.qclass.0.to_be_bytes());
        }
        let sections = [&self.answers, &self.authority, &self.additional];
        for (records, &n) in sections.into_iter().zip(&counts[1..]) {
            for record in records.iter().take(n.into()) {
                encode_record(record, &mut out);
            }
        }
        out
    }

    /// Decodes a whole message, strictly: every count must match the entries present, and
    /// nothing may follow the last. See [`MessageError`] for what is rejected.
    pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
        let mut reader = Reader::new(bytes)?;
        let header = reader.header;
        let questions = reader.questions()?;
        let answers = reader.records(Section::Answer)?;
        let authority = reader.records(Section::Authority)?;
        let additional = reader.records(Section::Additional)?;
        if reader.pos != bytes.len() {
            return Err(MessageError::TrailingBytes { at: reader.pos });
        }
        Ok(Message {
            header,
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// Decodes only the header and the question section: enough to match a response to its
    /// query, even one cut short by truncation (TC), whose records may be incomplete.
    pub fn decode_head(bytes: &[u8]) -> Result<(Header, Vec<Question>), MessageError> {
        let mut reader = Reader::new(bytes)?;
        Ok((reader.header, reader.questions()?))
    }

    /// The addresses the answer section gives for `question`'s name and type (A or AAAA,
    /// class IN), following CNAMEs from the name within the answer section (at most 16, so a
    /// CNAME loop ends with no address). Records of other names, types and classes are
    /// skipped.
    pub fn addresses(&self, question: &Question) -> AddressAnswer {
        let mut name = &question.name;
        let mut ttl: Option<u32> = None;
        for _ in 0..=MAX_CNAME_CHAIN {
            let owned = |r: &&Record| r.name == *name && r.class == RecordClass::IN;
            let mut addresses = Vec::new();
            for record in self.answers.iter().filter(owned) {
                let address = match (&record.data, question.qtype) {
                    (RecordData::A(a), RecordType::A) => IpAddr::V4(*a),
                    (RecordData::Aaaa(a), RecordType::AAAA) => IpAddr::V6(*a),
                    _ => continue,
                };
                ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
                addresses.push(address);
            }
            if !addresses.is_empty() {
                return AddressAnswer {
                    addresses,
                    canonical_name: name.clone(),
                    ttl,
                };
            }
            let cname = self
                .answers
                .iter()
                .filter(owned)
                .find_map(|r| match &r.data {
                    RecordData::Cname(target) => Some((target, r.ttl)),
                    _ => None,
                });
            let Some((target, cname_ttl)) = cname else {
                break;
            };
            ttl = Some(ttl.map_or(cname_ttl, |t| t.min(cname_ttl)));
            name = target;
        }
        AddressAnswer {
            addresses: Vec::new(),
            canonical_name: name.clone(),
            ttl: None,
        }
    }

    /// How long a negative answer (NXDOMAIN, or no record of the type) may be cached: the
    /// smaller of the authority section's SOA TTL and its MINIMUM (RFC 2308 §5). `None`
    /// without an SOA: such an answer is not cached.
    pub fn negative_ttl(&self) -> Option<u32> {
        self.authority.iter().find_map(|r| match &r.data {
            RecordData::Soa(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
    }
}

fn encode_record(record: &Record, out: &mut Vec<u8>) {
    out.extend_from_slice(record.name.as_wire());
    out.extend_from_slice(&record.rtype.0.to_be_bytes());
    out.extend_from_slice(&record.class.0.to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    let length_at = out.len();
    out.extend_from_slice(&[0, 0]);
    match &record.data {
        RecordData::A(a) => out.extend_from_slice(&a.octets()),
        RecordData::Aaaa(a) => out.extend_from_slice(&a.octets()),
        RecordData::Cname(target) => out.extend_from_slice(target.as_wire()),
        RecordData::Soa(soa) => {
            out.extend_from_slice(soa.mname.as_wire());
            out.extend_from_slice(soa.rname.as_wire());
            for n in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        RecordData::Other(data) => out.extend_from_slice(data),
    }
    // RDATA of our own making over 65,535 bytes would only come from an `Other` that large;
    // its length is cut like the counts.
    let length = u16::try_from(out.len() - length_at - 2).unwrap_or(u16::MAX);
    out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
}

/// A cursor over a message being decoded.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
    header: Header,
    /// The four counts, in section order.
    counts: [u16; 4],
}

impl<'a> Reader<'a> {
    fn new(msg: &'a [u8]) -> Result<Reader<'a>, MessageError> {
        let fixed: &[u8; HEADER_LEN] = msg
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(MessageError::Truncated { at: msg.len() })?;
        let count = |i: usize| u16::from_be_bytes([fixed[4 + 2 * i], fixed[5 + 2 * i]]);
        Ok(Reader {
            msg,
            pos: HEADER_LEN,
            header: Header::decode([fixed[0], fixed[1], fixed[2], fixed[3]]),
            counts: [count(0), count(1), count(2), count(3)],
        })
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let bytes = self
            .msg
            .get(self.pos..self.pos + n)
            .ok_or(MessageError::Truncated { at: self.msg.len() })?;
        self.pos += n;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, MessageError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, MessageError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<Name, MessageError> {
        let (name, end) = Name::read(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }

    /// Room for `count` entries of at least `min_len` bytes, but no more than the bytes
    /// left could hold: a lying count cannot make us allocate.
    fn capacity(&self, count: u16, min_len: usize) -> usize {
        usize::from(count).min((self.msg.len() - self.pos) / min_len)
    }

    /// Fails if the message ended cleanly before entry `found` of a section.
    fn check_more(&self, section: Section, found: u16) -> Result<(), MessageError> {
        if self.pos == self.msg.len() {
            return Err(MessageError::CountMismatch {
                section,
                announced: self.counts[section as usize],
                found,
            });
        }
        Ok(())
    }

    fn questions(&mut self) -> Result<Vec<Question>, MessageError> {
        let count = self.counts[Section::Question as usize];
        // The smallest question: the root name, type and class.
        let mut questions = Vec::with_capacity(self.capacity(count, 5));
        for found in 0..count {
            self.check_more(Section::Question, found)?;
            let name = self.name()?;
            let qtype = RecordType(self.u16()?);
            let qclass = RecordClass(self.u16()?);
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
        }
        Ok(questions)
    }

    fn records(&mut self, section: Section) -> Result<Vec<Record>, MessageError> {
        let count = self.counts[section as usize];
        let mut records = Vec::with_capacity(self.capacity(count, MIN_RECORD_LEN));
        for found in 0..count {
            self.check_more(section, found)?;
            records.push(self.record()?);
        }
        Ok(records)
    }

    fn record(&mut self) -> Result<Record, MessageError> {
        let name = self.name()?;
        let rtype = RecordType(self.u16()?);
        let class = RecordClass(self.u16()?);
        let ttl = self.u32()?;
        // RFC 2181 §8: a TTL with the top bit set is treated as zero.
        let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
        let length = usize::from(self.u16()?);
        let start = self.pos;
        let rdata = self.bytes(length)?;
        let bad = MessageError::BadRdata { at: start, rtype };
        let data = match rtype {
            RecordType::A => RecordData::A(<[u8; 4]>::try_from(rdata).map_err(|_| bad)?.into()),
            RecordType::AAAA => {
                RecordData::Aaaa(<[u8; 16]>::try_from(rdata).map_err(|_| bad)?.into())
            }
            RecordType::CNAME => {
                let (target, end) = Name::read(self.msg, start)?;
                if end != self.pos {
                    return Err(bad);
                }
                RecordData::Cname(target)
            }
            RecordType::SOA => RecordData::Soa(self.soa(start).map_err(|e| match e {
                MessageError::Truncated { .. } => bad,
                other => other,
            })?),
            _ => RecordData::Other(rdata.to_vec()),
        };
        Ok(Record {
            name,
            rtype,
            class,
            ttl,
            data,
        })
    }

    /// An SOA's RDATA from `start` to the current position (the end of the RDATA); a field
    /// running past that end reads as truncated.
    fn soa(&self, start: usize) -> Result<Soa, MessageError> {
        let end = self.pos;
        let (mname, next) = Name::read(self.msg, start)?;
        let (rname, next) = Name::read(self.msg, next)?;
        let bad = MessageError::BadRdata {
            at: start,
            rtype: RecordType::SOA,
        };
        if next + 20 != end {
            return Err(bad);
        }
        let mut inner = Reader {
            msg: &self.msg[..end],
            pos: next,
            header: self.header,
            counts: self.counts,
        };
        Ok(Soa {
            mname,
            rname,
            serial: inner.u32()?,
            refresh: inner.u32()?,
            retry: inner.u32()?,
            expire: inner.u32()?,
            minimum: inner.u32()?,
        })
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
