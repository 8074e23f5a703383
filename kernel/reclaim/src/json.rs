//! A minimal streaming JSON writer (objects, arrays, strings, integers, null)
//! for the kernel's one-line `REPORT` output.

use alloc::string::String;
use core::fmt::Write;

/// Builds one JSON value into a `String`, inserting commas itself.
#[derive(Default)]
pub struct Json {
    out: String,
    /// Whether the next value at the current nesting level needs a comma.
    need_comma: bool,
}

impl Json {
    /// An empty writer.
    pub fn new() -> Json {
        Json::default()
    }

    fn sep(&mut self) {
        if self.need_comma {
            self.out.push(',');
        }
        self.need_comma = true;
    }

    /// Starts an object (as a value).
    pub fn begin_object(&mut self) -> &mut Self {
        self.sep();
        self.out.push('{');
        self.need_comma = false;
        self
    }

    /// Ends the current object.
    pub fn end_object(&mut self) -> &mut Self {
        self.out.push('}');
        self.need_comma = true;
        self
    }

    /// Starts an array (as a value).
    pub fn begin_array(&mut self) -> &mut Self {
        self.sep();
        self.out.push('[');
        self.need_comma = false;
        self
    }

    /// Ends the current array.
    pub fn end_array(&mut self) -> &mut Self {
        self.out.push(']');
        self.need_comma = true;
        self
    }

    /// Writes an object key; the next call writes its value.
    pub fn key(&mut self, k: &str) -> &mut Self {
        self.sep();
        push_escaped(&mut self.out, k);
        self.out.push(':');
        self.need_comma = false;
        self
    }

    /// Writes a string value.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        push_escaped(&mut self.out, s);
        self
    }

    /// Writes an unsigned integer value.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{v}");
        self
    }

    /// Writes a signed integer value.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{v}");
        self
    }

    /// Writes a boolean value.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    /// Writes `null`.
    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.push_str("null");
        self
    }

    /// Writes a string or `null`.
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// Consumes the writer, returning the text.
    pub fn finish(self) -> String {
        self.out
    }
}

fn push_escaped(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_get_commas_and_escapes() {
        let mut j = Json::new();
        j.begin_object();
        j.key("a").u64(1);
        j.key("b")
            .begin_array()
            .str("x\"y")
            .null()
            .i64(-3)
            .end_array();
        j.key("c").begin_object().key("d").bool(true).end_object();
        j.key("e\n").opt_str(None);
        j.end_object();
        assert_eq!(
            j.as_str(),
            r#"{"a":1,"b":["x\"y",null,-3],"c":{"d":true},"e\n":null}"#
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut j = Json::new();
        j.str("\u{1}");
        assert_eq!(j.finish(), "\"\\u0001\"");
    }
}
