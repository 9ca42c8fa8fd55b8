//! One CSV field as every output writes it: RFC 4180 minimal quoting
//! (RULES.md 4). It sits below `output` and `journal`, which both write
//! CSV, so that neither depends on the other for it.
#![forbid(unsafe_code)]

/// Appends `text` as one field, quoted only when it holds a comma, a quote
/// or a line end.
pub fn push_field(out: &mut String, text: &str) {
    // Bytes, not chars: ids are short and almost never need quoting.
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}
