//! The vocabulary of DNS messages: record types and classes, response codes, questions and
//! resource records.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::name::Name;

/// A record type (RFC 1035 §3.2.2, RFC 3596), as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordType(pub u16);

impl RecordType {
    /// An IPv4 address.
    pub const A: RecordType = RecordType(1);
    /// An authoritative name server.
    pub const NS: RecordType = RecordType(2);
    /// The canonical name for an alias.
    pub const CNAME: RecordType = RecordType(5);
    /// The start of a zone of authority (its MINIMUM bounds negative caching, RFC 2308).
    pub const SOA: RecordType = RecordType(6);
    /// A domain name pointer.
    pub const PTR: RecordType = RecordType(12);
    /// Mail exchange.
    pub const MX: RecordType = RecordType(15);
    /// Text strings.
    pub const TXT: RecordType = RecordType(16);
    /// An IPv6 address (RFC 3596).
    pub const AAAA: RecordType = RecordType(28);
    /// The EDNS pseudo-record (RFC 6891).
    pub const OPT: RecordType = RecordType(41);
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            RecordType::A => "A",
            RecordType::NS => "NS",
            RecordType::CNAME => "CNAME",
            RecordType::SOA => "SOA",
            RecordType::PTR => "PTR",
            RecordType::MX => "MX",
            RecordType::TXT => "TXT",
            RecordType::AAAA => "AAAA",
            RecordType::OPT => "OPT",
            RecordType(other) => return write!(f, "TYPE{other}"),
        };
        f.write_str(name)
    }
}

/// A record class; only [`RecordClass::IN`] matters to a resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordClass(pub u16);

impl RecordClass {
    /// The Internet.
    pub const IN: RecordClass = RecordClass(1);
}

/// A response code (RFC 1035 §4.1.1), the header's low four bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rcode(pub u8);

impl Rcode {
    /// No error.
    pub const NO_ERROR: Rcode = Rcode(0);
    /// The server could not understand the query.
    pub const FORM_ERR: Rcode = Rcode(1);
    /// The server failed (e.g. could not reach the zone's servers).
    pub const SERV_FAIL: Rcode = Rcode(2);
    /// The name does not exist.
    pub const NX_DOMAIN: Rcode = Rcode(3);
    /// The server does not do this kind of query.
    pub const NOT_IMP: Rcode = Rcode(4);
    /// The server refuses to answer (policy).
    pub const REFUSED: Rcode = Rcode(5);
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Rcode::NO_ERROR => "NOERROR",
            Rcode::FORM_ERR => "FORMERR",
            Rcode::SERV_FAIL => "SERVFAIL",
            Rcode::NX_DOMAIN => "NXDOMAIN",
            Rcode::NOT_IMP => "NOTIMP",
            Rcode::REFUSED => "REFUSED",
            Rcode(other) => return write!(f, "RCODE{other}"),
        };
        f.write_str(name)
    }
}

/// One entry of the question section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// The record type asked for.
    pub qtype: RecordType,
    /// The class asked in, [`RecordClass::IN`] for a resolver.
    pub qclass: RecordClass,
}

impl Question {
    /// A question for `qtype` records of `name` in class IN.
    pub fn new(name: Name, qtype: RecordType) -> Question {
        Question {
            name,
            qtype,
            qclass: RecordClass::IN,
        }
    }
}

/// A start-of-authority record's data (RFC 1035 §3.3.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// The zone's primary server.
    pub mname: Name,
    /// The zone administrator's mailbox.
    pub rname: Name,
    /// The zone's version.
    pub serial: u32,
    /// Seconds between secondary refreshes.
    pub refresh: u32,
    /// Seconds between retries of a failed refresh.
    pub retry: u32,
    /// Seconds after which a secondary stops answering.
    pub expire: u32,
    /// The upper bound on how long a negative answer may be cached (RFC 2308 §4).
    pub minimum: u32,
}

/// A record's data: parsed for the types a resolver follows, kept as bytes for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordData {
    /// An A record's address.
    A(Ipv4Addr),
    /// An AAAA record's address.
    Aaaa(Ipv6Addr),
    /// A CNAME record's target.
    Cname(Name),
    /// An SOA record.
    Soa(Soa),
    /// Any other type's RDATA, unparsed. Names in it may be compressed, so they mean nothing
    /// out of the message.
    Other(Vec<u8>),
}

/// A resource record (RFC 1035 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name.
    pub name: Name,
    /// The type.
    pub rtype: RecordType,
    /// The class.
    pub class: RecordClass,
    /// Seconds the record may be cached. A TTL with the top bit set reads as 0 (RFC 2181 §8).
    pub ttl: u32,
    /// The data.
    pub data: RecordData,
}

impl Record {
    /// A record of class IN whose type follows from `data` (`Other` data is given the type
    /// `TYPE0`: set [`rtype`](Record::rtype) after).
    pub fn new(name: Name, ttl: u32, data: RecordData) -> Record {
        let rtype = match &data {
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::AAAA,
            RecordData::Cname(_) => RecordType::CNAME,
            RecordData::Soa(_) => RecordType::SOA,
            RecordData::Other(_) => RecordType(0),
        };
        Record {
            name,
            rtype,
            class: RecordClass::IN,
            ttl,
            data,
        }
    }
}
