//! Lowercase hex text of bytes, and back: for bytes that travel as text
//! (partial aggregate states, signatures, keys).

/// `bytes` as lowercase hex digits, two per byte.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    text
}

/// The bytes of hex text (either case); `None` when it is not hex.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    // `from_str_radix` alone would also take a sign (`+f`).
    if !digits.len().is_multiple_of(2) || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xfe, 0xff];
        assert_eq!(super::encode(&bytes), "00017f80feff");
        assert_eq!(super::decode("00017F80feff").as_deref(), Some(&bytes[..]));
        for bad in ["0", "zz", "0g", "+1"] {
            assert_eq!(super::decode(bad), None, "{bad}");
        }
    }
}
