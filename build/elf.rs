//! What build.rs asks of the forwarder a client carries; also compiled
//! into tests/portability.rs, which tries it.

/// The architecture of `contents` as `docker info` names it (x86_64,
/// aarch64), or why it is not a static 64-bit Linux executable: the image
/// it goes in holds nothing else, no loader, no library.
pub fn static_linux_executable(contents: &[u8]) -> Result<&'static str, &'static str> {
    const PT_INTERP: u32 = 3;
    let field = |at: usize, len: usize| {
        at.checked_add(len)
            .and_then(|end| contents.get(at..end))
            .ok_or("is too short for an ELF file")
    };
    if field(0, 4)? != b"\x7fELF" || field(4, 1)? != [2] || field(5, 1)? != [1] {
        return Err("is not a 64-bit little-endian ELF executable");
    }
    let u16_at = |at: usize| field(at, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    // An executable, or a position-independent one (static-pie).
    if !matches!(u16_at(0x10)?, 2 | 3) {
        return Err("is not an executable");
    }
    let architecture = match u16_at(0x12)? {
        62 => "x86_64",
        183 => "aarch64",
        _ => return Err("is for a machine other than x86_64 or aarch64"),
    };
    let table = field(0x20, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)?;
    let (size, count) = (u16_at(0x36)?, u16_at(0x38)?);
    if size < 4 {
        return Err("has program headers too small to read");
    }
    for k in 0..count {
        let header = field(table.saturating_add(k * size), size)?;
        if u32::from_le_bytes([header[0], header[1], header[2], header[3]]) == PT_INTERP {
            return Err("is linked dynamically (it names a loader)");
        }
    }
    Ok(architecture)
}
