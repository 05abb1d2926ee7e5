//! The scanner: turns source text into tokens, inserting commas at line ends as CUE's grammar
//! requires, and collecting `//` comments for doc-comment attachment.

/// A token; text-carrying tokens borrow their text from the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tok<'s> {
    Ident(&'s str),
    Int(&'s str),
    Float(&'s str),
    /// A string or bytes literal: the full raw source slice including quotes and `#`s.
    Str(&'s str),
    /// A one-line `"…"` literal without escapes or interpolations (raw slice with its quotes):
    /// its value is the text between the quotes.
    PlainStr(&'s str),
    Attr(&'s str),
    Bottom,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Colon,
    Question,
    Bang,
    Dot,
    Ellipsis,
    Assign,
    Or,
    And,
    LOr,
    LAnd,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
    Add,
    Sub,
    Mul,
    Div,
    /// An automatically inserted comma (newline).
    Newline,
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub struct Token<'s> {
    pub tok: Tok<'s>,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub text: String,
}

pub struct Lexer<'s> {
    src: &'s str,
    pub(crate) b: &'s [u8],
    pub(crate) pos: usize,
    pub(crate) insert_comma: bool,
    pub comments: Vec<Comment>,
    /// The line number of the current position is `line_base + line_starts.len()`.
    line_base: usize,
    /// The offset of every line's start seen so far (the file's line index, for error
    /// positions: recorded as newlines are met, where a separate pass over the file costs
    /// several instructions per byte). For a lexer started past offset 0 (an interpolation),
    /// only the line starts after that offset.
    pub line_starts: Vec<usize>,
    /// Interpolations open around the current position.
    interp_depth: usize,
}

/// How deep interpolations may nest (strings in interpolations in strings…).
const MAX_INTERP_NEST: usize = 1000;

pub type LexResult<T> = Result<T, (String, usize)>;

/// Identifier characters, one table lookup instead of several comparisons per byte.
const IDENT_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'#';
        c += 1;
    }
    t
};

/// The bytes that end the fast scan of a one-line `"…"` literal: its quote, an escape, a newline.
const STR_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

#[inline]
pub(crate) fn is_ident_char(c: u8) -> bool {
    IDENT_CHAR[c as usize]
}

/// The end of the run of the byte `c` (indentation) starting at `pos`, found 8 bytes at a time.
#[inline]
pub(crate) fn skip_run(b: &[u8], mut pos: usize, c: u8) -> usize {
    let pat = u64::from_le_bytes([c; 8]);
    while let Some(chunk) = b.get(pos..pos + 8) {
        let diff = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])) ^ pat;
        if diff != 0 {
            // the first byte that differs ends the run
            return pos + (diff.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while b.get(pos) == Some(&c) {
        pos += 1;
    }
    pos
}

const LO: u64 = u64::from_le_bytes([0x01; 8]);
const HI: u64 = u64::from_le_bytes([0x80; 8]);

/// A word with the high bit set in the bytes of `w` equal to the byte that `pat` repeats (the
/// lowest set bit is exact; bits above it may be false positives).
#[inline(always)]
fn eq_bytes(w: u64, pat: u64) -> u64 {
    let x = w ^ pat;
    x.wrapping_sub(LO) & !x & HI
}

/// The length of a one-line `"…"` literal's text starting at `from` (just past its opening
/// quote) when it ends with a quote before any escape or newline, 8 bytes at a time.
#[inline(always)]
pub(crate) fn plain_str_len(b: &[u8], from: usize) -> Option<usize> {
    const QUOTE: u64 = u64::from_le_bytes([b'"'; 8]);
    const BSL: u64 = u64::from_le_bytes([b'\\'; 8]);
    const NL: u64 = u64::from_le_bytes([b'\n'; 8]);
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let m = eq_bytes(w, QUOTE) | eq_bytes(w, BSL) | eq_bytes(w, NL);
        if m != 0 {
            let at = i + (m.trailing_zeros() / 8) as usize;
            return (b[at] == b'"').then_some(at - from);
        }
        i += 8;
    }
    let rest = b.get(i..).unwrap_or(&[]);
    let k = rest.iter().position(|&c| STR_STOP[c as usize])?;
    (rest[k] == b'"').then_some(i + k - from)
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str, start: usize, end: usize) -> Lexer<'s> {
        let src = src.get(..end).unwrap_or(src);
        let line = src
            .as_bytes()
            .iter()
            .take(start)
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        let (line_starts, line_base) = if start == 0 {
            let mut v = Vec::with_capacity(end / 24 + 2);
            v.push(0);
            (v, 0)
        } else {
            (Vec::new(), line)
        };
        Lexer {
            src,
            b: src.as_bytes(),
            pos: start,
            insert_comma: false,
            comments: Vec::new(),
            line_base,
            line_starts,
            interp_depth: 0,
        }
    }

    /// Whether the source after the `{` (`brace`) or `[` just scanned starts like plain data
    /// (JSON): a quoted label or the end of the struct, or a string, number, `true`, `false`,
    /// `null`, nested literal or end of the list. Only then is the literal worth trying as
    /// plain data before scanning its tokens.
    pub(crate) fn data_may_follow(&self, brace: bool) -> bool {
        let b = self.b;
        let mut pos = self.pos;
        while let Some(&c) = b.get(pos) {
            if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                return if brace {
                    matches!(c, b'"' | b'}')
                } else {
                    match c {
                        b'"' | b'0'..=b'9' | b'{' | b'[' | b']' => true,
                        // `true`, `false` or `null`, not `for` or another identifier
                        b't' | b'f' | b'n' => {
                            let w = b.get(pos..).unwrap_or(&[]);
                            [&b"true"[..], b"false", b"null"].iter().any(|k| {
                                w.starts_with(k)
                                    && !w.get(k.len()).is_some_and(|&c| is_ident_char(c))
                            })
                        }
                        _ => false,
                    }
                };
            }
            pos = skip_run(b, pos, c);
        }
        false
    }

    /// A lexer of nothing (a placeholder: allocates nothing).
    pub(crate) fn empty() -> Lexer<'s> {
        Lexer {
            src: "",
            b: &[],
            pos: 0,
            insert_comma: false,
            comments: Vec::new(),
            line_base: 0,
            line_starts: Vec::new(),
            interp_depth: 0,
        }
    }

    /// Counts the newline at `pos`.
    #[inline]
    fn newline(&mut self, pos: usize) {
        self.line_starts.push(pos + 1);
    }

    /// The line number (from 1) of the current position.
    fn line(&self) -> usize {
        self.line_base + self.line_starts.len()
    }

    #[inline]
    fn peek(&self, off: usize) -> u8 {
        self.b.get(self.pos + off).copied().unwrap_or(0)
    }

    #[cold]
    #[inline(never)]
    fn illegal(&self, start: usize) -> (String, usize) {
        let ch = self
            .src
            .get(start..)
            .and_then(|s| s.chars().next())
            .unwrap_or('?');
        (format!("illegal character {ch:?}"), start)
    }

    /// Records a `//` comment starting at `pos` and moves to its end (out of line: rare next to
    /// the other tokens, and it keeps `next` small).
    #[inline(never)]
    fn skip_comment(&mut self) {
        let start = self.pos;
        while self.pos < self.b.len() && self.b[self.pos] != b'\n' {
            self.pos += 1;
        }
        let text = self
            .src
            .get(start + 2..self.pos)
            .unwrap_or("")
            .trim()
            .to_string();
        self.comments.push(Comment {
            start,
            end: self.pos,
            line: self.line(),
            text,
        });
    }

    /// Scans an attribute `@name(balanced)` starting at `pos`.
    #[inline(never)]
    fn scan_attr(&mut self) -> LexResult<()> {
        self.pos += 1;
        self.skip_ident_chars();
        if self.peek(0) == b'(' {
            let mut depth = 0usize;
            while self.pos < self.b.len() {
                let ch = self.b[self.pos];
                if ch == b'(' {
                    depth += 1;
                } else if ch == b')' {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.pos += 1;
                        break;
                    }
                } else if ch == b'"' {
                    self.scan_string()?;
                    continue;
                } else if ch == b'\n' {
                    self.newline(self.pos);
                }
                self.pos += 1;
            }
        }
        Ok(())
    }

    /// Advances over identifier characters.
    #[inline]
    fn skip_ident_chars(&mut self) {
        let rest = self.b.get(self.pos..).unwrap_or(&[]);
        self.pos += rest
            .iter()
            .position(|&c| !is_ident_char(c))
            .unwrap_or(rest.len());
    }

    #[inline(always)]
    pub fn next(&mut self) -> LexResult<Token<'s>> {
        // the position is kept in a local (a register) and stored once per token
        let b = self.b;
        let mut pos = self.pos;
        // skip whitespace and comments
        let c = loop {
            let Some(&c) = b.get(pos) else {
                self.pos = pos;
                let tok = if self.insert_comma {
                    self.insert_comma = false;
                    Tok::Newline
                } else {
                    Tok::Eof
                };
                return Ok(Token {
                    tok,
                    start: pos,
                    end: pos,
                });
            };
            match c {
                b' ' | b'\t' | b'\r' => pos = skip_run(b, pos, c),
                b'\n' => {
                    self.newline(pos);
                    pos += 1;
                    if self.insert_comma {
                        self.insert_comma = false;
                        self.pos = pos;
                        return Ok(Token {
                            tok: Tok::Newline,
                            start: pos - 1,
                            end: pos,
                        });
                    }
                }
                b'/' if b.get(pos + 1) == Some(&b'/') => {
                    self.pos = pos;
                    self.skip_comment();
                    pos = self.pos;
                }
                _ => break c,
            }
        };
        let start = pos;
        let c1 = b.get(pos + 1).copied().unwrap_or(0);
        let mut ins = true;
        let tok = match c {
            b'"' => {
                // fast path: a one-line literal without escapes (not the `"""` of a multi-line
                // one) ends at the next quote
                match plain_str_len(b, start + 1) {
                    Some(i) if i > 0 || b.get(start + 2) != Some(&b'"') => {
                        pos = start + i + 2;
                        Tok::PlainStr(self.text(start, pos))
                    }
                    _ => {
                        self.pos = pos;
                        self.scan_string()?;
                        pos = self.pos;
                        Tok::Str(self.text(start, pos))
                    }
                }
            }
            b'_' if c1 == b'|' && b.get(pos + 2) == Some(&b'_') => {
                pos += 3;
                Tok::Bottom
            }
            b'#' if c1 == b'"' || c1 == b'#' || c1 == b'\'' => {
                self.pos = pos;
                self.scan_string()?;
                pos = self.pos;
                Tok::Str(self.text(start, pos))
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' | b'#' => {
                pos += 1;
                while b.get(pos).is_some_and(|&c| is_ident_char(c)) {
                    pos += 1;
                }
                Tok::Ident(self.text(start, pos))
            }
            b'0'..=b'9' => {
                self.pos = pos;
                let t = self.scan_number()?;
                pos = self.pos;
                t
            }
            b'.' if c1.is_ascii_digit() => {
                self.pos = pos;
                let t = self.scan_number()?;
                pos = self.pos;
                t
            }
            b'\'' => {
                self.pos = pos;
                self.scan_string()?;
                pos = self.pos;
                Tok::Str(self.text(start, pos))
            }
            b'@' => {
                self.pos = pos;
                self.scan_attr()?;
                pos = self.pos;
                Tok::Attr(self.text(start, pos))
            }
            _ => {
                let (t, n) = match c {
                    b'{' => (Tok::LBrace, 1),
                    b'}' => (Tok::RBrace, 1),
                    b'[' => (Tok::LBrack, 1),
                    b']' => (Tok::RBrack, 1),
                    b'(' => (Tok::LParen, 1),
                    b')' => (Tok::RParen, 1),
                    b',' => (Tok::Comma, 1),
                    b':' => (Tok::Colon, 1),
                    b'?' => (Tok::Question, 1),
                    b'|' if c1 == b'|' => (Tok::LOr, 2),
                    b'|' => (Tok::Or, 1),
                    b'&' if c1 == b'&' => (Tok::LAnd, 2),
                    b'&' => (Tok::And, 1),
                    b'=' if c1 == b'=' => (Tok::Eq, 2),
                    b'=' if c1 == b'~' => (Tok::Match, 2),
                    b'=' => (Tok::Assign, 1),
                    b'!' if c1 == b'=' => (Tok::Ne, 2),
                    b'!' if c1 == b'~' => (Tok::NotMatch, 2),
                    b'!' => (Tok::Bang, 1),
                    b'<' if c1 == b'=' => (Tok::Le, 2),
                    b'<' => (Tok::Lt, 1),
                    b'>' if c1 == b'=' => (Tok::Ge, 2),
                    b'>' => (Tok::Gt, 1),
                    b'.' if c1 == b'.' && b.get(pos + 2) == Some(&b'.') => (Tok::Ellipsis, 3),
                    b'.' => (Tok::Dot, 1),
                    b'+' => (Tok::Add, 1),
                    b'-' => (Tok::Sub, 1),
                    b'*' => (Tok::Mul, 1),
                    b'/' => (Tok::Div, 1),
                    _ => {
                        self.pos = pos;
                        return Err(self.illegal(start));
                    }
                };
                pos += n;
                ins = matches!(
                    t,
                    Tok::RBrace
                        | Tok::RBrack
                        | Tok::RParen
                        | Tok::Ellipsis
                        | Tok::Question
                        | Tok::Bang
                );
                t
            }
        };
        self.pos = pos;
        self.insert_comma = ins;
        Ok(Token {
            tok,
            start,
            end: pos,
        })
    }

    /// The source text `[start, end)` of a token.
    #[inline(always)]
    fn text(&self, start: usize, end: usize) -> &'s str {
        self.src.get(start..end).unwrap_or("")
    }

    #[inline(never)]
    fn scan_number(&mut self) -> LexResult<Tok<'s>> {
        let start = self.pos;
        let mut is_float = false;
        if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X' | b'o' | b'O' | b'b' | b'B') {
            self.pos += 2;
            while self.peek(0).is_ascii_hexdigit() || self.peek(0) == b'_' {
                self.pos += 1;
            }
            return Ok(Tok::Int(&self.src[start..self.pos]));
        }
        while self.peek(0).is_ascii_digit() || self.peek(0) == b'_' {
            self.pos += 1;
        }
        if self.peek(0) == b'.' && self.peek(1) != b'.' {
            is_float = true;
            self.pos += 1;
            while self.peek(0).is_ascii_digit() || self.peek(0) == b'_' {
                self.pos += 1;
            }
        }
        if matches!(self.peek(0), b'e' | b'E') {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(0), b'+' | b'-') {
                self.pos += 1;
            }
            if self.peek(0).is_ascii_digit() {
                is_float = true;
                while self.peek(0).is_ascii_digit() {
                    self.pos += 1;
                }
            } else {
                self.pos = save;
            }
        }
        // SI suffixes
        if matches!(
            self.peek(0),
            b'K' | b'M' | b'G' | b'T' | b'P' | b'E' | b'Z' | b'Y'
        ) {
            self.pos += 1;
            if self.peek(0) == b'i' {
                self.pos += 1;
            }
            return Ok(Tok::Int(&self.src[start..self.pos]));
        }
        let text = &self.src[start..self.pos];
        Ok(if is_float {
            Tok::Float(text)
        } else {
            Tok::Int(text)
        })
    }

    /// Scans a string literal starting at self.pos (possibly with leading `#`s), including
    /// nested interpolations.
    fn scan_string(&mut self) -> LexResult<()> {
        let start = self.pos;
        let mut hashes = 0;
        while self.peek(0) == b'#' {
            hashes += 1;
            self.pos += 1;
        }
        let q = self.peek(0);
        if q != b'"' && q != b'\'' {
            return Err(("invalid string literal".into(), start));
        }
        let multi = self.peek(1) == q && self.peek(2) == q;
        self.pos += if multi { 3 } else { 1 };
        if !multi && hashes == 0 {
            // fast path: a one-line literal without escapes ends at the next quote
            let rest = self.b.get(self.pos..).unwrap_or(&[]);
            if let Some(i) = rest
                .iter()
                .position(|&c| c == q || c == b'\\' || c == b'\n')
            {
                if rest[i] == q {
                    self.pos += i + 1;
                    return Ok(());
                }
                // an escape or a newline: the general loop takes over from there
                self.pos += i;
            }
        }
        loop {
            if self.pos >= self.b.len() {
                return Err(("string literal not terminated".into(), start));
            }
            let c = self.b[self.pos];
            if c == b'\n' {
                if !multi {
                    return Err(("string literal not terminated".into(), start));
                }
                self.newline(self.pos);
                self.pos += 1;
                continue;
            }
            if c == b'\\' {
                // escape: must be followed by `hashes` #'s to be active
                let mut k = 1;
                let mut ok = true;
                for _ in 0..hashes {
                    if self.peek(k) != b'#' {
                        ok = false;
                        break;
                    }
                    k += 1;
                }
                if ok && self.peek(k) == b'(' {
                    self.pos += k + 1;
                    self.skip_interp()?;
                    continue;
                }
                self.pos += if ok { k + 1 } else { 1 };
                continue;
            }
            if c == q {
                let closes = if multi {
                    self.peek(1) == q && self.peek(2) == q
                } else {
                    true
                };
                if closes {
                    let n = if multi { 3 } else { 1 };
                    let mut ok = true;
                    for i in 0..hashes {
                        if self.peek(n + i) != b'#' {
                            ok = false;
                        }
                    }
                    if ok {
                        self.pos += n + hashes;
                        return Ok(());
                    }
                }
            }
            self.pos += 1;
        }
    }

    /// Skips an interpolation body up to and including its closing paren.
    fn skip_interp(&mut self) -> LexResult<()> {
        // strings nest in interpolations, each a level of recursion here (and a parser over
        // the inner text later): as deep as the parser's nesting limit, no deeper
        self.interp_depth += 1;
        if self.interp_depth > MAX_INTERP_NEST {
            return Err((crate::parser::TOO_DEEP.into(), self.pos));
        }
        let r = self.skip_interp_body();
        self.interp_depth -= 1;
        r
    }

    fn skip_interp_body(&mut self) -> LexResult<()> {
        let mut depth = 1usize;
        while self.pos < self.b.len() {
            let c = self.b[self.pos];
            match c {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                b'"' | b'\'' | b'#' if c != b'#' || matches!(self.peek(1), b'"' | b'#') => {
                    self.scan_string()?;
                    continue;
                }
                b'\n' => self.newline(self.pos),
                _ => {}
            }
            self.pos += 1;
        }
        Err(("interpolation not terminated".into(), self.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        let mut l = Lexer::new(s, 0, s.len());
        let mut out = vec![];
        loop {
            let t = l.next().expect("lex");
            if t.tok == Tok::Eof {
                break;
            }
            out.push(t.tok);
        }
        out
    }

    #[test]
    fn commas_inserted() {
        let t = toks("a: 1\nb: \"x\\(y)\"\n");
        assert_eq!(
            t,
            vec![
                Tok::Ident("a"),
                Tok::Colon,
                Tok::Int("1"),
                Tok::Newline,
                Tok::Ident("b"),
                Tok::Colon,
                Tok::Str("\"x\\(y)\""),
                Tok::Newline
            ]
        );
    }

    #[test]
    fn operators_and_punctuation() {
        use Tok::*;
        assert_eq!(
            toks("||&&==!=<=>==~!~|&=!<>... .+-*/?:,{}[]()"),
            vec![
                LOr, LAnd, Eq, Ne, Le, Ge, Match, NotMatch, Or, And, Assign, Bang, Lt, Gt,
                Ellipsis, Dot, Add, Sub, Mul, Div, Question, Colon, Comma, LBrace, RBrace, LBrack,
                RBrack, LParen, RParen, Newline
            ]
        );
        assert_eq!(
            toks("a.b .5"),
            vec![Ident("a"), Dot, Ident("b"), Float(".5"), Newline]
        );
    }

    #[test]
    fn strings_plain_and_escaped() {
        assert_eq!(
            toks(r###""ab" "a\"b" "x\(y)z" 'q' #"r"s"# "" "é""###),
            vec![
                Tok::PlainStr(r#""ab""#),
                Tok::Str(r#""a\"b""#),
                Tok::Str(r#""x\(y)z""#),
                Tok::Str("'q'"),
                Tok::Str(r##"#"r"s"#"##),
                Tok::PlainStr(r#""""#),
                Tok::PlainStr(r#""é""#),
                Tok::Newline
            ]
        );
        let mut l = Lexer::new("a: \"x\ny\"", 0, 9);
        let errs: Vec<String> = std::iter::from_fn(|| match l.next() {
            Ok(t) if t.tok == Tok::Eof => None,
            Ok(_) => Some(None),
            Err((m, _)) => Some(Some(m)),
        })
        .take(10)
        .flatten()
        .collect();
        assert_eq!(
            errs.first().map(String::as_str),
            Some("string literal not terminated")
        );
    }

    #[test]
    fn indentation_runs() {
        for n in 0..20 {
            for ws in [" ", "\t", " \t", "\r\n"] {
                let src = format!("{}a:{}1{}\n", ws.repeat(n), ws.repeat(n), ws.repeat(n));
                let mut l = Lexer::new(&src, 0, src.len());
                let mut got = vec![];
                loop {
                    let t = l.next().expect("lex");
                    if t.tok == Tok::Eof {
                        break;
                    }
                    got.push((t.tok, t.start, t.end));
                }
                let a = src.find('a').expect("a");
                let one = src.find('1').expect("1");
                assert_eq!(
                    &got[..3],
                    &[
                        (Tok::Ident("a"), a, a + 1),
                        (Tok::Colon, a + 1, a + 2),
                        (Tok::Int("1"), one, one + 1)
                    ],
                    "{src:?}"
                );
            }
        }
    }

    #[test]
    fn bottom_and_numbers() {
        assert_eq!(
            toks("_|_ 1Ki 1.5 0x10"),
            vec![
                Tok::Bottom,
                Tok::Int("1Ki"),
                Tok::Float("1.5"),
                Tok::Int("0x10"),
                Tok::Newline
            ]
        );
    }
}
