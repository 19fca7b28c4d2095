//! One frame's header (RFC 6455 §5.2): read with every rule a header can break, and written,
//! with the payload masked when a client sends it.

use bytes::{BufMut, BytesMut};

use super::CloseCode;

/// A frame's opcode (RFC 6455 §5.2; the reserved ones are refused when read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong (§5.5).
    pub(super) fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A frame's header as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) fin: bool,
    pub(super) opcode: Opcode,
    pub(super) mask: Option<[u8; 4]>,
    pub(super) len: u64,
    /// Bytes of the header itself (2 to 14).
    pub(super) size: usize,
}

/// Which masking the reader requires: clients must mask, servers must not (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Masking {
    Required,
    Forbidden,
}

/// Why a header is refused: always a protocol error (close 1002).
pub(super) type HeaderError = (CloseCode, &'static str);

const PROTOCOL: CloseCode = CloseCode::PROTOCOL_ERROR;

/// Reads the header at the start of `input`: `Ok(None)` if it is not whole yet.
pub(super) fn read_header(input: &[u8], masking: Masking) -> Result<Option<Header>, HeaderError> {
    let [b0, b1, ..] = *input else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err((PROTOCOL, "reserved bits set without an extension"));
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or((PROTOCOL, "reserved opcode"))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    match (masking, masked) {
        (Masking::Required, false) => return Err((PROTOCOL, "unmasked frame from a client")),
        (Masking::Forbidden, true) => return Err((PROTOCOL, "masked frame from a server")),
        _ => {}
    }
    let (len, mut size) = match b1 & 0x7F {
        126 => {
            let Some(bytes) = input.get(2..4) else {
                return Ok(None);
            };
            let len = u16::from_be_bytes([bytes[0], bytes[1]]);
            if len < 126 {
                return Err((PROTOCOL, "length not in its shortest form"));
            }
            (u64::from(len), 4)
        }
        127 => {
            let Some(bytes) = input.get(2..10) else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
            if len >> 63 != 0 {
                return Err((PROTOCOL, "length with its most significant bit set"));
            }
            if len <= 0xFFFF {
                return Err((PROTOCOL, "length not in its shortest form"));
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err((PROTOCOL, "control frame fragmented or over 125 bytes"));
    }
    let mask = if masked {
        let Some(key) = input.get(size..size + 4) else {
            return Ok(None);
        };
        size += 4;
        Some(key.try_into().expect("4 bytes"))
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        len,
        size,
    }))
}

/// XORs `data` with `key`, the payload's first byte being `offset` bytes into the frame's
/// payload (§5.3): masking and unmasking are the same operation.
pub(super) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= key[(offset + i) % 4];
    }
}

/// Writes a whole frame to `out`, masked with `mask` if given (a client's frames).
pub(super) fn write_frame(
    out: &mut BytesMut,
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    out.reserve(14 + payload.len());
    out.put_u8(if fin { 0x80 } else { 0 } | opcode.bits());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => out.put_u8(mask_bit | len as u8),
        len @ 126..=0xFFFF => {
            out.put_u8(mask_bit | 126);
            out.put_u16(len as u16);
        }
        len => {
            out.put_u8(mask_bit | 127);
            out.put_u64(len as u64);
        }
    }
    let start = out.len();
    if let Some(key) = mask {
        out.put_slice(&key);
    }
    let start = start + mask.map_or(0, |_| 4);
    out.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Option<Header>, HeaderError> {
        read_header(bytes, Masking::Forbidden)
    }

    #[test]
    fn lengths_of_7_16_and_64_bits_are_read() {
        assert_eq!(read(&[0x82, 125]).unwrap().unwrap().len, 125);
        let h = read(&[0x82, 126, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.len, h.size), (256, 4));
        let h = read(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap().unwrap();
        assert_eq!((h.len, h.size), (65536, 10));
    }

    #[test]
    fn a_partial_header_is_not_an_error() {
        for input in [&[][..], &[0x82], &[0x82, 126, 1], &[0x82, 127, 0, 0, 0]] {
            assert_eq!(read(input), Ok(None));
        }
        assert_eq!(
            read_header(&[0x81, 0x85, 1, 2], Masking::Required),
            Ok(None)
        );
    }

    #[test]
    fn lengths_not_in_shortest_form_are_refused() {
        assert!(read(&[0x82, 126, 0, 125]).is_err());
        assert!(read(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]).is_err());
        assert!(read(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn masking_is_required_from_clients_and_forbidden_from_servers() {
        assert!(read_header(&[0x81, 0x00], Masking::Required).is_err());
        assert!(read_header(&[0x81, 0x80, 0, 0, 0, 0], Masking::Forbidden).is_err());
        let h = read_header(&[0x81, 0x80, 1, 2, 3, 4], Masking::Required);
        assert_eq!(h.unwrap().unwrap().mask, Some([1, 2, 3, 4]));
    }

    #[test]
    fn written_frames_read_back_at_every_length_class() {
        for len in [0, 1, 125, 126, 65535, 65536] {
            let payload = vec![7u8; len];
            let mut out = BytesMut::new();
            write_frame(&mut out, true, Opcode::Binary, Some([9, 8, 7, 6]), &payload);
            let h = read_header(&out, Masking::Required).unwrap().unwrap();
            assert_eq!((h.len, h.fin, h.opcode), (len as u64, true, Opcode::Binary));
            let mut body = out[h.size..].to_vec();
            apply_mask(&mut body, h.mask.unwrap(), 0);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn the_rfc_masked_hello_example_unmasks() {
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = read_header(&frame, Masking::Required).unwrap().unwrap();
        let mut body = frame[h.size..].to_vec();
        apply_mask(&mut body, h.mask.unwrap(), 0);
        assert_eq!(body, b"Hello");
    }
}
