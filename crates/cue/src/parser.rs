//! The parser: tokens to [`crate::ast`]. Recursive descent with precedence climbing; string
//! interpolations are parsed by sub-parsers over the same source so spans stay absolute.

use crate::ast::*;
use crate::lexer::{Lexer, Tok, Token, is_ident_char, plain_str_len, skip_run};

pub struct PErr {
    pub msg: String,
    pub offset: usize,
}

type PResult<T> = Result<T, PErr>;

fn perr<T>(msg: impl Into<String>, offset: usize) -> PResult<T> {
    Err(PErr {
        msg: msg.into(),
        offset,
    })
}

/// The most tokens scanned ahead of the parser at a time.
const BATCH: usize = 64;

/// How deep expressions, literals and fields may nest.
pub const MAX_NEST: usize = 1000;

/// The error of nesting past the limit.
pub const TOO_DEEP: &str = "nesting too deep";

pub struct Parser<'s> {
    src: &'s str,
    /// The scanner, run as the parser asks for tokens; it also records the comments and the
    /// line index.
    lx: Lexer<'s>,
    /// The first scanning error, if any: from there on the parser sees `Eof`, and
    /// [`Parser::finish`] reports this error rather than the parser's own.
    lex_err: Option<PErr>,
    /// The tokens scanned and not yet passed (`toks[i]` is the current one), scanned in
    /// batches that end after a `{` or `[` that plain data may follow: such a literal's
    /// contents are not scanned before the parser tries them as plain data (see
    /// [`Parser::try_data_literal`]).
    toks: Vec<Token<'s>>,
    /// The number of comments before the last declaration asked for its doc comments
    /// (declarations are met in source order: the search goes on from there).
    comment_cursor: usize,
    /// Index of the current token in `toks`, and a copy of it (read many times per token).
    i: usize,
    cur: Token<'s>,
    /// Literals starting before this offset are not tried as plain data (an attempt stopped
    /// there: each part of the source is tried at most once).
    data_from: usize,
    /// Whether plain data is parsed straight from the source (off only in tests, which
    /// compare both ways).
    data_path: bool,
    /// End offset of the last consumed token (0 before the first).
    prev_end: usize,
    file: u32,
    depth: usize,
    /// The nesting limit of this parse (at most [`MAX_NEST`]).
    max_nest: usize,
    /// Declarations of the struct literals being parsed (innermost last): each literal's
    /// vector is split off, allocated once at its final size. Index 0 holds a placeholder, so
    /// that `split_off` never hands out (and replaces) the stack's own buffer.
    decl_stack: Vec<Decl>,
    /// The same for list elements.
    elem_stack: Vec<ListElem>,
    /// Whether a struct `let` or an alias was parsed ([`File::binds`]).
    binds: bool,
    /// The [`label_bloom`] bits of the identifiers referenced since the innermost struct
    /// literal being parsed began (see [`StructLit::refs`]).
    refs: u64,
}

impl<'s> Parser<'s> {
    /// A parser of `src[start..end]` (spans stay offsets into `src`).
    pub fn new(src: &'s str, start: usize, end: usize, file: u32) -> Parser<'s> {
        let mut p = Parser {
            src,
            lx: Lexer::new(src, start, end),
            lex_err: None,
            toks: Vec::with_capacity(BATCH + 4),
            comment_cursor: 0,
            i: 0,
            cur: Token {
                tok: Tok::Eof,
                start: src.len(),
                end: src.len(),
            },
            data_from: 0,
            data_path: true,
            prev_end: 0,
            file,
            depth: 0,
            max_nest: MAX_NEST,
            decl_stack: vec![Decl::Ellipsis(None, Span::default())],
            elem_stack: vec![ListElem::Ellipsis(None, Span::default())],
            binds: false,
            refs: 0,
        };
        p.fill();
        p.cur = p.toks.first().copied().unwrap_or(p.cur);
        p
    }

    /// The next token from the scanner; `Eof` after a scanning error (recorded).
    #[inline(always)]
    fn lex(&mut self) -> Token<'s> {
        if self.lex_err.is_none() {
            match self.lx.next() {
                Ok(t) => return t,
                Err((msg, offset)) => self.lex_err = Some(PErr { msg, offset }),
            }
        }
        Token {
            tok: Tok::Eof,
            start: self.src.len(),
            end: self.src.len(),
        }
    }

    /// Scans a batch of tokens onto `toks`: up to [`BATCH`], ending after a `{` or `[` that
    /// plain data may follow (see [`Lexer::data_may_follow`]) or at the end of the source.
    #[inline(never)]
    fn fill(&mut self) {
        // the vector and the scanner in locals: their state stays in registers as tokens are
        // scanned and pushed
        let mut toks = std::mem::take(&mut self.toks);
        let mut lx = std::mem::replace(&mut self.lx, Lexer::empty());
        let eof = Token {
            tok: Tok::Eof,
            start: self.src.len(),
            end: self.src.len(),
        };
        if self.lex_err.is_some() {
            toks.push(eof);
        } else {
            for _ in 0..BATCH {
                let t = match lx.next() {
                    Ok(t) => t,
                    Err((msg, offset)) => {
                        self.lex_err = Some(PErr { msg, offset });
                        toks.push(eof);
                        break;
                    }
                };
                toks.push(t);
                match t.tok {
                    Tok::Eof => break,
                    Tok::LBrace | Tok::LBrack if lx.data_may_follow(t.tok == Tok::LBrace) => break,
                    _ => {}
                }
            }
        }
        self.toks = toks;
        self.lx = lx;
    }

    /// Starts a new batch once every scanned token is passed.
    #[inline(never)]
    fn refill(&mut self) {
        self.toks.clear();
        self.i = 0;
        self.fill();
    }

    /// The outcome of a parse: a scanning error anywhere in the source comes first (as when
    /// the whole source was scanned before parsing), so after a parse error the rest of the
    /// source is scanned for one.
    pub fn finish<T>(&mut self, r: PResult<T>) -> PResult<T> {
        if r.is_err() {
            while self.lex_err.is_none() && self.lex().tok != Tok::Eof {}
        }
        match self.lex_err.take() {
            Some(e) => Err(e),
            None => r,
        }
    }

    /// Lowers the nesting limit to `n` (for a parse on a stack too small for [`MAX_NEST`]).
    pub fn set_max_nest(&mut self, n: usize) {
        self.max_nest = n.min(MAX_NEST);
    }

    /// The byte offset of every line's start in the source (for a parser over a whole
    /// source, i.e. started at offset 0).
    pub fn take_line_starts(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.lx.line_starts)
    }

    #[inline]
    fn peek(&self) -> Tok<'s> {
        self.cur.tok
    }
    /// The token `k` places ahead (`peek_at(0)` is the current one).
    #[inline]
    fn peek_at(&mut self, k: usize) -> Tok<'s> {
        match self.toks.get(self.i + k) {
            Some(t) => t.tok,
            None => self.peek_scan(k),
        }
    }

    /// [`Parser::peek_at`] past the last token scanned: the tokens passed are dropped first
    /// (the vector holds about a batch, never the file's tokens).
    #[inline(never)]
    fn peek_scan(&mut self, k: usize) -> Tok<'s> {
        self.toks.drain(..self.i.min(self.toks.len()));
        self.i = 0;
        self.fill_to(k);
        self.toks.get(k).map_or(Tok::Eof, |t| t.tok)
    }

    #[inline(never)]
    fn fill_to(&mut self, j: usize) {
        while self.toks.len() <= j {
            self.fill();
        }
    }
    #[inline]
    fn cur(&self) -> Token<'s> {
        self.cur
    }
    #[inline]
    fn off(&self) -> usize {
        self.cur.start
    }
    #[inline]
    fn prev_end(&self) -> usize {
        self.prev_end
    }
    /// Moves past the current token.
    #[inline(always)]
    fn advance(&mut self) {
        self.prev_end = self.cur.end;
        self.i += 1;
        match self.toks.get(self.i) {
            Some(&t) => self.cur = t,
            None => self.advance_batch(),
        }
    }

    /// [`Parser::advance`] past the last token scanned: the next batch's first token.
    #[inline(never)]
    fn advance_batch(&mut self) {
        self.refill();
        self.cur = self.toks.first().copied().unwrap_or(Token {
            tok: Tok::Eof,
            start: self.src.len(),
            end: self.src.len(),
        });
    }
    /// Consumes the current token.
    #[inline]
    fn bump(&mut self) -> Token<'s> {
        let t = self.cur;
        if !matches!(t.tok, Tok::Eof) {
            self.advance();
        }
        t
    }
    fn span(&self, start: usize, end: usize) -> Span {
        Span {
            file: self.file,
            start: start as u32,
            end: end as u32,
        }
    }
    fn is_sep(&self) -> bool {
        matches!(self.peek(), Tok::Comma | Tok::Newline)
    }
    fn skip_seps(&mut self) {
        while self.is_sep() {
            self.advance();
        }
    }
    #[inline]
    fn expect(&mut self, t: Tok<'s>, what: &str) -> PResult<Token<'s>> {
        if self.peek() == t {
            Ok(self.bump())
        } else {
            self.expected(what)
        }
    }
    #[cold]
    #[inline(never)]
    fn expected<T>(&self, what: &str) -> PResult<T> {
        perr(
            format!("expected {what}, found {}", self.describe()),
            self.off(),
        )
    }
    fn describe(&self) -> String {
        let t = self.cur();
        match t.tok {
            Tok::Eof => "EOF".into(),
            Tok::Newline => "newline".into(),
            _ => format!("'{}'", self.src.get(t.start..t.end).unwrap_or("?")),
        }
    }
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.max_nest {
            return perr(TOO_DEEP, self.off());
        }
        Ok(())
    }

    pub fn parse_file(&mut self, name: &str) -> PResult<File> {
        let start = self.off();
        self.skip_seps();
        let mut package = None;
        let mut imports = Vec::new();
        // attributes at file level are skipped
        while matches!(self.peek(), Tok::Attr(_)) {
            self.bump();
            self.skip_seps();
        }
        if self.peek() == Tok::Ident("package") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.bump();
            if let Tok::Ident(n) = self.bump().tok {
                package = Some(n.to_string());
            }
            self.skip_seps();
        }
        while self.peek() == Tok::Ident("import")
            && matches!(
                self.peek_at(1),
                Tok::Str(_) | Tok::PlainStr(_) | Tok::LParen | Tok::Ident(_)
            )
        {
            self.bump();
            if self.peek() == Tok::LParen {
                self.bump();
                self.skip_seps();
                while self.peek() != Tok::RParen {
                    imports.push(self.parse_import_spec()?);
                    self.skip_seps();
                }
                self.bump();
            } else {
                imports.push(self.parse_import_spec()?);
            }
            self.skip_seps();
        }
        let body = self.parse_decls(true)?;
        let end = self.off();
        Ok(File {
            name: name.to_string(),
            package,
            imports,
            body,
            span: self.span(start, end),
            binds: self.binds,
        })
    }

    fn parse_import_spec(&mut self) -> PResult<Import> {
        let start = self.off();
        let mut name = None;
        if let Tok::Ident(n) = self.peek() {
            self.bump();
            name = Some(n.to_string());
        }
        let t = self.bump();
        let (Tok::Str(raw) | Tok::PlainStr(raw)) = t.tok else {
            return perr("expected import path string", t.start);
        };
        let path = match decode_string(raw, t.start)? {
            (parts, false) if parts.len() <= 1 => match parts.into_iter().next() {
                Some(Seg::Lit(s)) => s,
                None => String::new(),
                _ => return perr("invalid import path", t.start),
            },
            _ => return perr("invalid import path", t.start),
        };
        Ok(Import {
            name,
            path,
            span: self.span(start, t.end),
        })
    }

    #[inline]
    fn doc_comments(&mut self, decl_start: usize) -> Vec<String> {
        // comments are recorded in source order: when the last one starts before the previous
        // token's end, none lies between that token and this declaration (most declarations)
        if self
            .lx
            .comments
            .last()
            .is_none_or(|c| c.start < self.prev_end)
        {
            return Vec::new();
        }
        self.doc_comments_between(decl_start)
    }

    /// The doc comments of the declaration at `decl_start`, found by the comment cursor.
    #[inline(never)]
    fn doc_comments_between(&mut self, decl_start: usize) -> Vec<String> {
        let prev_end = self.prev_end();
        let mut idx = self.comment_cursor;
        if idx > 0
            && self
                .lx
                .comments
                .get(idx - 1)
                .is_some_and(|c| c.start >= decl_start)
        {
            // (not after the last declaration asked: search from the start)
            idx = self.lx.comments.partition_point(|c| c.start < decl_start);
        }
        while self
            .lx
            .comments
            .get(idx)
            .is_some_and(|c| c.start < decl_start)
        {
            idx += 1;
        }
        self.comment_cursor = idx;
        let Some(last) = idx.checked_sub(1).and_then(|i| self.lx.comments.get(i)) else {
            return Vec::new();
        };
        if last.start < prev_end {
            return Vec::new();
        }
        let gap = self.src.get(last.end..decl_start).unwrap_or("");
        let mut want = last.line + gap.bytes().filter(|&c| c == b'\n').count();
        let mut out: Vec<String> = Vec::new();
        for c in self.lx.comments[..idx].iter().rev() {
            if c.start < prev_end {
                break;
            }
            if c.line + 1 == want {
                out.push(c.text.clone());
                want = c.line;
            } else {
                break;
            }
        }
        out.reverse();
        out
    }

    /// Declarations up to `}` (or EOF when `top`).
    fn parse_decls(&mut self, top: bool) -> PResult<StructLit> {
        let start = self.off();
        let base = self.decl_stack.len();
        let r = self.parse_decls_onto_stack(top);
        let decls = self.decl_stack.split_off(base);
        r?;
        Ok(StructLit::new(decls, self.span(start, self.off())))
    }

    fn parse_decls_onto_stack(&mut self, top: bool) -> PResult<()> {
        loop {
            self.skip_seps();
            match self.peek() {
                Tok::Eof => {
                    if top {
                        break;
                    }
                    return perr("expected '}', found EOF", self.off());
                }
                Tok::RBrace if !top => break,
                _ => {}
            }
            self.parse_decl_onto_stack()?;
            match self.peek() {
                Tok::Comma | Tok::Newline => {}
                Tok::RBrace if !top => {}
                Tok::Eof => {}
                _ => {
                    return perr(
                        format!("missing ',' before {}", self.describe()),
                        self.off(),
                    );
                }
            }
        }
        Ok(())
    }

    /// One declaration, pushed onto [`Parser::decl_stack`].
    fn parse_decl_onto_stack(&mut self) -> PResult<()> {
        // fast path: `name: …` or `"name": …` (most declarations of JSON-like data) takes its
        // label straight from the token, without building an expression first (`let`, `for`
        // and `if` followed by `:` are labels too)
        if self.peek_at(1) == Tok::Colon {
            let t = self.cur;
            let label = match t.tok {
                Tok::PlainStr(raw) => Some(Label::Str(
                    raw.get(1..raw.len() - 1).unwrap_or("").to_string(),
                    self.span(t.start, t.end),
                )),
                // `_` is not a label; `true`, `null` and the like are identifiers here
                Tok::Ident(n) if n != "_" => {
                    Some(Label::Ident(n.to_string(), self.span(t.start, t.end)))
                }
                _ => None,
            };
            if let Some(label) = label {
                let start = t.start;
                let comments = self.doc_comments(start);
                self.bump();
                self.bump(); // ':'
                // a lone scalar value ended by `,`, a newline or `}` (JSON-like data): no
                // precedence climb, no shorthand nesting, no attributes to look for; the
                // declaration is built in place on the stack
                if matches!(
                    self.peek(),
                    Tok::PlainStr(_) | Tok::Int(_) | Tok::Float(_) | Tok::Ident(_) | Tok::Bottom
                ) && matches!(
                    self.peek_at(1),
                    Tok::Comma | Tok::Newline | Tok::RBrace | Tok::Eof
                ) && self.depth < self.max_nest
                {
                    let value = self.parse_operand()?;
                    let span = self.span(start, self.prev_end());
                    self.decl_stack.push(Decl::Field(Field {
                        label,
                        constraint: Constraint::None,
                        value,
                        rare: None,
                        comments: Comments::from_vec(comments),
                        span,
                    }));
                    return Ok(());
                }
                let d = self.finish_field(start, comments, label, None, Constraint::None)?;
                self.decl_stack.push(d);
                return Ok(());
            }
        }
        let d = self.parse_decl()?;
        self.decl_stack.push(d);
        Ok(())
    }

    fn parse_decl(&mut self) -> PResult<Decl> {
        let start = self.off();
        match self.peek() {
            Tok::Ellipsis => {
                self.bump();
                if self.is_sep() || matches!(self.peek(), Tok::RBrace | Tok::RBrack | Tok::Eof) {
                    return Ok(Decl::Ellipsis(None, self.span(start, self.prev_end())));
                }
                let e = self.parse_expr()?;
                return Ok(Decl::Ellipsis(Some(e), self.span(start, self.prev_end())));
            }
            Tok::Ident(k)
                if k == "let"
                    && matches!(self.peek_at(1), Tok::Ident(_))
                    && self.peek_at(2) == Tok::Assign =>
            {
                self.bump();
                let Tok::Ident(name) = self.bump().tok else {
                    return perr("expected identifier", start);
                };
                self.bump();
                let value = self.parse_expr()?;
                self.binds = true;
                return Ok(Decl::Let(LetDecl {
                    name: name.to_string(),
                    value,
                    span: self.span(start, self.prev_end()),
                }));
            }
            Tok::Ident(k) if (k == "for" || k == "if") && !self.is_field_label_ahead() => {
                return Ok(Decl::Comprehension(self.parse_comprehension()?));
            }
            _ => {}
        }
        let comments = self.doc_comments(start);
        self.parse_field_or_embed(start, comments)
    }

    fn parse_field_or_embed(&mut self, start: usize, comments: Vec<String>) -> PResult<Decl> {
        let before = self.refs;
        let e = self.parse_expr()?;
        if self.is_label_ident(&e) {
            // the label `name` of `name?: …` is no reference
            self.refs = before;
        }
        self.parse_field_rest(start, comments, e)
    }

    /// Whether `e`, just parsed, is an identifier followed by `:`, `?:` or `!:`: a label.
    fn is_label_ident(&mut self, e: &Expr) -> bool {
        matches!(e.kind, ExprKind::Ident(_))
            && matches!(
                (self.peek(), self.peek_at(1)),
                (Tok::Colon, _) | (Tok::Question | Tok::Bang, Tok::Colon)
            )
    }

    /// `X=expr` inside `[…]` or `(…)` of a label (`[Name=string]: {name: Name}`,
    /// `(X="a" + "b"): X`): the alias binds the label the field gets. The expression parsed,
    /// as `ExprKind::Alias` when it has an alias; `close` is the bracket that must follow, and
    /// a label's `:` after it (elsewhere, as in a list element `[X=1]`, the alias is an
    /// explicit error: CUE does not implement list element aliases).
    fn parse_label_alias_expr(&mut self, close: Tok<'s>, what: &str) -> PResult<Expr> {
        let (Tok::Ident(n), Tok::Assign) = (self.peek(), self.peek_at(1)) else {
            return self.parse_expr();
        };
        let name = n.to_string();
        let start = self.bump().start;
        self.bump(); // '='
        let x = self.parse_expr()?;
        self.skip_newlines();
        let labelled = self.peek() == close
            && matches!(
                (self.peek_at(1), self.peek_at(2)),
                (Tok::Colon, _) | (Tok::Question | Tok::Bang, Tok::Colon)
            );
        if !labelled {
            return perr(
                format!(
                    "unsupported: alias `{name}=` in {what}: an alias in brackets or parentheses \
                     must name the label of a field (`[{name}=expr]: value`, `({name}=expr): value`)"
                ),
                start,
            );
        }
        self.binds = true;
        let span = self.span(start, self.prev_end());
        Ok(Expr {
            kind: ExprKind::Alias(name, Box::new(x)),
            span,
        })
    }

    /// A declaration whose first expression (label or embedding) is already parsed.
    fn parse_field_rest(&mut self, start: usize, comments: Vec<String>, e: Expr) -> PResult<Decl> {
        let mut alias = None;
        let mut alias_span = e.span;
        let mut e = e;
        if self.peek() == Tok::Assign {
            if let ExprKind::Ident(n) = &e.kind {
                alias = Some(Box::<str>::from(n.as_str()));
                alias_span = e.span;
                self.binds = true;
                self.bump();
                e = self.parse_expr()?;
            } else {
                return perr("unexpected '='", self.off());
            }
        }
        let constraint = match (self.peek(), self.peek_at(1)) {
            (Tok::Question, Tok::Colon) => {
                self.bump();
                Constraint::Optional
            }
            (Tok::Bang, Tok::Colon) => {
                self.bump();
                Constraint::Required
            }
            _ => Constraint::None,
        };
        if self.peek() != Tok::Colon {
            if alias.is_some() {
                // value alias at declaration level: X=expr embedding (spanning `X=expr`)
                let span = alias_span.to(e.span);
                let a = alias.unwrap_or_default().into_string();
                return Ok(Decl::Embed(Expr {
                    kind: ExprKind::Alias(a, Box::new(e)),
                    span,
                }));
            }
            if constraint != Constraint::None {
                return perr("expected ':'", self.off());
            }
            return Ok(Decl::Embed(e));
        }
        self.bump(); // ':'
        let label = self.expr_to_label(e)?;
        self.finish_field(start, comments, label, alias, constraint)
    }

    /// The attributes after a field's value (out of line: most fields have none).
    #[inline(never)]
    fn parse_attrs(&mut self) -> Box<[Attr]> {
        let mut attrs = Vec::new();
        while let Tok::Attr(a) = self.peek() {
            let t = self.bump();
            let name = a
                .trim_start_matches('@')
                .split('(')
                .next()
                .unwrap_or("")
                .to_string();
            let body = a
                .split_once('(')
                .map(|x| x.1.trim_end_matches(')').to_string())
                .unwrap_or_default();
            attrs.push(Attr {
                name,
                body,
                span: self.span(t.start, t.end),
            });
        }
        attrs.into_boxed_slice()
    }

    /// The value (and attributes) of a field whose label and `:` are consumed.
    fn finish_field(
        &mut self,
        start: usize,
        comments: Vec<String>,
        label: Label,
        alias: Option<Box<str>>,
        constraint: Constraint,
    ) -> PResult<Decl> {
        let vstart = self.off();
        self.enter()?;
        let value = self.parse_value_or_field(vstart)?;
        self.depth -= 1;
        let attrs = if matches!(self.peek(), Tok::Attr(_)) {
            self.parse_attrs()
        } else {
            Box::default()
        };
        let rare = if alias.is_some() || !attrs.is_empty() {
            Some(Box::new(FieldRare { alias, attrs }))
        } else {
            None
        };
        Ok(Decl::Field(Field {
            label,
            constraint,
            value,
            rare,
            comments: Comments::from_vec(comments),
            span: self.span(start, self.prev_end()),
        }))
    }

    /// After `label:` either a value, or another `label: value` (shorthand nesting).
    fn parse_value_or_field(&mut self, vstart: usize) -> PResult<Expr> {
        let before = self.refs;
        let e = self.parse_expr()?;
        let nested = match (self.peek(), self.peek_at(1)) {
            (Tok::Colon, _) => true,
            (Tok::Question | Tok::Bang, Tok::Colon) => true,
            (Tok::Assign, _) => matches!(e.kind, ExprKind::Ident(_)),
            _ => false,
        };
        if !nested {
            return Ok(e);
        }
        // `a: b: c`: the literal `{b: c}`'s references recorded on their own (its label `b`
        // is none), then added to the enclosing one's
        let label_only = self.is_label_ident(&e);
        if label_only {
            self.refs = 0;
        }
        let d = self.parse_field_rest(vstart, Vec::new(), e);
        let inner = self.refs;
        if label_only {
            self.refs = before | inner;
        }
        let d = d?;
        let span = self.span(vstart, self.prev_end());
        let mut lit = StructLit::new(vec![d], span);
        if label_only {
            lit.refs = inner;
        }
        Ok(Expr {
            kind: ExprKind::Struct(Box::new(lit)),
            span,
        })
    }

    fn expr_to_label(&self, e: Expr) -> PResult<Label> {
        match e.kind {
            ExprKind::Ident(n) => Ok(Label::Ident(n, e.span)),
            ExprKind::Str(s) => Ok(Label::Str(s, e.span)),
            ExprKind::Interp { bytes: false, .. } => Ok(Label::Dynamic(Box::new(e))),
            ExprKind::Paren(inner) => Ok(Label::Dynamic(inner)),
            ExprKind::List(mut elems) if elems.len() == 1 => match elems.pop() {
                Some(ListElem::Expr(x)) => Ok(Label::Pattern(Box::new(x))),
                _ => perr("invalid label", e.span.start as usize),
            },
            ExprKind::Null => Ok(Label::Ident("null".into(), e.span)),
            ExprKind::Bool(b) => Ok(Label::Ident(b.to_string(), e.span)),
            _ => perr("invalid label", e.span.start as usize),
        }
    }

    fn parse_comprehension(&mut self) -> PResult<Comprehension> {
        let start = self.off();
        let mut clauses = Vec::new();
        loop {
            if !clauses.is_empty() && matches!(self.peek(), Tok::Newline | Tok::Comma) {
                let next_is_clause = match self.peek_at(1) {
                    Tok::Ident(k) => k == "for" || k == "if" || k == "let",
                    Tok::LBrace => true,
                    _ => false,
                };
                if next_is_clause {
                    self.bump();
                }
            }
            let cs = self.off();
            match self.peek() {
                Tok::Ident("for") => {
                    self.bump();
                    let Tok::Ident(a) = self.bump().tok else {
                        return perr("expected identifier after 'for'", cs);
                    };
                    let (key, value) = if self.peek() == Tok::Comma {
                        self.bump();
                        let Tok::Ident(b) = self.bump().tok else {
                            return perr("expected identifier", cs);
                        };
                        (Some(a.to_string()), b.to_string())
                    } else {
                        (None, a.to_string())
                    };
                    if self.peek() != Tok::Ident("in") {
                        return perr("expected 'in'", self.off());
                    }
                    self.bump();
                    let source = self.parse_expr()?;
                    clauses.push(Clause::For {
                        key,
                        value,
                        source,
                        span: self.span(cs, self.prev_end()),
                    });
                }
                Tok::Ident("if") => {
                    self.bump();
                    clauses.push(Clause::If(self.parse_expr()?));
                }
                Tok::Ident(k) if k == "let" && !clauses.is_empty() => {
                    self.bump();
                    let Tok::Ident(name) = self.bump().tok else {
                        return perr("expected identifier", cs);
                    };
                    self.expect(Tok::Assign, "'='")?;
                    let value = self.parse_expr()?;
                    clauses.push(Clause::Let {
                        name: name.to_string(),
                        value,
                        span: self.span(cs, self.prev_end()),
                    });
                }
                Tok::LBrace => break,
                _ => {
                    return perr(
                        format!("expected '{{' in comprehension, found {}", self.describe()),
                        self.off(),
                    );
                }
            }
            // Clauses may be separated by newlines? Not in CUE; they're on the same logical line.
        }
        let body = self.parse_operand()?;
        Ok(Comprehension {
            clauses,
            body: Box::new(body),
            span: self.span(start, self.prev_end()),
        })
    }

    pub fn parse_expr(&mut self) -> PResult<Expr> {
        // fast path: a lone literal or identifier (most labels and values of JSON-like data),
        // followed by a token that cannot continue an expression
        if matches!(
            self.peek(),
            Tok::PlainStr(_)
                | Tok::Str(_)
                | Tok::Int(_)
                | Tok::Float(_)
                | Tok::Ident(_)
                | Tok::Bottom
        ) && ends_operand(self.peek_at(1))
        {
            return self.parse_operand();
        }
        self.enter()?;
        let r = if matches!(self.peek(), Tok::LBrace | Tok::LBrack) {
            // a struct or list literal: alone (as most are) it needs no precedence climb
            self.parse_literal_expr()
        } else {
            self.parse_binary(1)
        };
        self.depth -= 1;
        r
    }

    /// An expression starting with a struct or list literal (what `parse_binary(1)` gives).
    fn parse_literal_expr(&mut self) -> PResult<Expr> {
        let x = self.parse_operand()?;
        if ends_operand(self.peek()) {
            return Ok(x);
        }
        let x = self.parse_primary_rest(x)?;
        self.parse_binary_rest(x, 1)
    }

    fn binop(&self) -> Option<(BinOp, u8)> {
        Some(match self.peek() {
            Tok::Or => (BinOp::Or, 1),
            Tok::And => (BinOp::And, 2),
            Tok::LOr => (BinOp::LOr, 3),
            Tok::LAnd => (BinOp::LAnd, 4),
            Tok::Eq => (BinOp::Eq, 5),
            Tok::Ne => (BinOp::Ne, 5),
            Tok::Lt => (BinOp::Lt, 5),
            Tok::Le => (BinOp::Le, 5),
            Tok::Gt => (BinOp::Gt, 5),
            Tok::Ge => (BinOp::Ge, 5),
            Tok::Match => (BinOp::Match, 5),
            Tok::NotMatch => (BinOp::NotMatch, 5),
            Tok::Add => (BinOp::Add, 6),
            Tok::Sub => (BinOp::Sub, 6),
            Tok::Mul => (BinOp::Mul, 7),
            Tok::Div => (BinOp::Div, 7),
            Tok::Ident("div") => (BinOp::IntDiv, 7),
            Tok::Ident("mod") => (BinOp::IntMod, 7),
            Tok::Ident("quo") => (BinOp::IntQuo, 7),
            Tok::Ident("rem") => (BinOp::IntRem, 7),
            _ => return None,
        })
    }

    fn parse_binary(&mut self, min: u8) -> PResult<Expr> {
        let lhs = self.parse_unary()?;
        self.parse_binary_rest(lhs, min)
    }

    /// The binary operators (of precedence `min` or more) after the operand `lhs`.
    fn parse_binary_rest(&mut self, mut lhs: Expr, min: u8) -> PResult<Expr> {
        while let Some((op, p)) = self.binop() {
            if p < min {
                break;
            }
            self.bump();
            // allow newline after binary operator
            while self.peek() == Tok::Newline {
                self.bump();
            }
            let rhs = self.parse_binary(p + 1)?;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn parse_unary(&mut self) -> PResult<Expr> {
        let start = self.off();
        let op = match self.peek() {
            Tok::Sub => Some(UnaryOp::Neg),
            Tok::Add => Some(UnaryOp::Pos),
            Tok::Bang => Some(UnaryOp::Not),
            Tok::Mul => Some(UnaryOp::Default),
            Tok::Lt => Some(UnaryOp::Lt),
            Tok::Le => Some(UnaryOp::Le),
            Tok::Gt => Some(UnaryOp::Gt),
            Tok::Ge => Some(UnaryOp::Ge),
            Tok::Ne => Some(UnaryOp::Ne),
            Tok::Match => Some(UnaryOp::Match),
            Tok::NotMatch => Some(UnaryOp::NotMatch),
            Tok::Eq => Some(UnaryOp::Eq),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            self.enter()?;
            let x = self.parse_unary()?;
            self.depth -= 1;
            let span = self.span(start, x.span.end as usize);
            return Ok(Expr {
                kind: ExprKind::Unary(op, Box::new(x)),
                span,
            });
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> PResult<Expr> {
        let x = self.parse_operand()?;
        self.parse_primary_rest(x)
    }

    /// The selectors, indexes, slices and calls after the operand `x`.
    fn parse_primary_rest(&mut self, mut x: Expr) -> PResult<Expr> {
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    let t = self.bump();
                    let name = match t.tok {
                        Tok::Ident(n) => n.to_string(),
                        Tok::Str(raw) | Tok::PlainStr(raw) => match decode_string(raw, t.start)? {
                            (mut parts, false) if parts.len() <= 1 => match parts.pop() {
                                Some(Seg::Lit(s)) => s,
                                None => String::new(),
                                _ => return perr("invalid selector", t.start),
                            },
                            _ => return perr("invalid selector", t.start),
                        },
                        _ => return perr("expected selector after '.'", t.start),
                    };
                    let span = self.span(x.span.start as usize, t.end);
                    x = Expr {
                        kind: ExprKind::Selector(Box::new(x), name, self.span(t.start, t.end)),
                        span,
                    };
                }
                Tok::LBrack => {
                    self.bump();
                    let mut lo = None;
                    if self.peek() != Tok::Colon {
                        lo = Some(Box::new(self.parse_expr()?));
                    }
                    if self.peek() == Tok::Colon {
                        self.bump();
                        let mut hi = None;
                        if self.peek() != Tok::RBrack {
                            hi = Some(Box::new(self.parse_expr()?));
                        }
                        let t = self.expect(Tok::RBrack, "']'")?;
                        let span = self.span(x.span.start as usize, t.end);
                        x = Expr {
                            kind: ExprKind::Slice(Box::new(x), lo, hi),
                            span,
                        };
                    } else {
                        let t = self.expect(Tok::RBrack, "']'")?;
                        let span = self.span(x.span.start as usize, t.end);
                        let Some(lo) = lo else {
                            return perr("expected index", t.start);
                        };
                        x = Expr {
                            kind: ExprKind::Index(Box::new(x), lo),
                            span,
                        };
                    }
                }
                Tok::LParen => {
                    self.bump();
                    let mut args = Vec::new();
                    loop {
                        self.skip_seps();
                        if self.peek() == Tok::RParen {
                            break;
                        }
                        args.push(self.parse_expr()?);
                        if self.is_sep() {
                            continue;
                        }
                        if self.peek() != Tok::RParen {
                            return perr(
                                format!("expected ')' in call, found {}", self.describe()),
                                self.off(),
                            );
                        }
                    }
                    let t = self.bump();
                    let span = self.span(x.span.start as usize, t.end);
                    x = Expr {
                        kind: ExprKind::Call(Box::new(x), args),
                        span,
                    };
                }
                _ => break,
            }
        }
        Ok(x)
    }

    fn parse_operand(&mut self) -> PResult<Expr> {
        let t = self.cur();
        let sp = self.span(t.start, t.end);
        let mk = |kind| Expr { kind, span: sp };
        match t.tok {
            Tok::Ident(n) => {
                self.bump();
                Ok(match n {
                    "true" => mk(ExprKind::Bool(true)),
                    "false" => mk(ExprKind::Bool(false)),
                    "null" => mk(ExprKind::Null),
                    "_" => mk(ExprKind::Top),
                    _ => {
                        self.refs |= label_bloom(n);
                        mk(ExprKind::Ident(n.to_string()))
                    }
                })
            }
            Tok::Bottom => {
                self.bump();
                Ok(mk(ExprKind::Bottom))
            }
            Tok::Int(s) => {
                self.bump();
                // (the error built only when needed: `ok_or` would format it for every number)
                parse_int_lit(s).map(&mk).ok_or_else(|| PErr {
                    msg: format!("invalid number {s}"),
                    offset: t.start,
                })
            }
            Tok::Float(s) => {
                self.bump();
                let parsed = if s.contains('_') {
                    s.chars()
                        .filter(|&c| c != '_')
                        .collect::<String>()
                        .parse::<f64>()
                } else {
                    s.parse::<f64>()
                };
                parsed.map(|f| mk(ExprKind::Float(f))).map_err(|_| PErr {
                    msg: format!("invalid number {s}"),
                    offset: t.start,
                })
            }
            Tok::PlainStr(raw) => {
                self.bump();
                let text = raw.get(1..raw.len() - 1).unwrap_or("");
                Ok(mk(ExprKind::Str(text.to_string())))
            }
            Tok::Str(raw) => {
                self.bump();
                if is_plain_string(raw) {
                    return Ok(mk(ExprKind::Str(raw[1..raw.len() - 1].to_string())));
                }
                let (segs, bytes) = decode_string(raw, t.start)?;
                let has_expr = segs.iter().any(|s| matches!(s, Seg::Expr(..)));
                if !has_expr {
                    let mut s = String::new();
                    let mut b: Vec<u8> = Vec::new();
                    for seg in segs {
                        match seg {
                            Seg::Lit(x) => {
                                s.push_str(&x);
                                b.extend_from_slice(x.as_bytes());
                            }
                            Seg::Byte(x) => b.push(x),
                            Seg::Expr(..) => {}
                        }
                    }
                    return Ok(if bytes {
                        mk(ExprKind::Bytes(b))
                    } else {
                        mk(ExprKind::Str(s))
                    });
                }
                let mut parts = Vec::new();
                for seg in segs {
                    match seg {
                        Seg::Lit(x) => parts.push(InterpPart::Lit(x)),
                        Seg::Byte(x) => {
                            parts.push(InterpPart::Lit(String::from_utf8_lossy(&[x]).into_owned()))
                        }
                        Seg::Expr(a, b) => {
                            let mut sub = Parser::new(self.src, a, b, self.file);
                            sub.depth = self.depth;
                            sub.max_nest = self.max_nest;
                            let r = sub.parse_interpolation();
                            self.refs |= sub.refs;
                            parts.push(InterpPart::Expr(sub.finish(r)?));
                        }
                    }
                }
                Ok(mk(ExprKind::Interp { parts, bytes }))
            }
            Tok::LParen => {
                self.bump();
                self.skip_newlines();
                let e = self.parse_label_alias_expr(Tok::RParen, "parentheses")?;
                self.skip_newlines();
                let end = self.expect(Tok::RParen, "')'")?;
                Ok(Expr {
                    kind: ExprKind::Paren(Box::new(e)),
                    span: self.span(t.start, end.end),
                })
            }
            Tok::LBrace | Tok::LBrack => {
                let is_struct = t.tok == Tok::LBrace;
                // a struct literal's references recorded on their own, then added to the
                // enclosing one's (a parse error ends the parse: nothing to restore then)
                let outer = if is_struct {
                    std::mem::take(&mut self.refs)
                } else {
                    0
                };
                let base = if is_struct {
                    self.decl_stack.len()
                } else {
                    self.elem_stack.len()
                };
                if self.i + 1 == self.toks.len()
                    && self.data_path
                    && t.start >= self.data_from
                    && self.lex_err.is_none()
                    && self.depth + 4 <= self.max_nest
                {
                    // plain data is parsed straight from the source, as far as it goes (the
                    // opening bracket and the members parsed are consumed)
                    if let Some(e) = self.try_data_literal(is_struct, base) {
                        // plain data refers to nothing: `self.refs` is still `outer`'s, or 0
                        self.refs |= outer;
                        return Ok(e);
                    }
                } else {
                    self.bump();
                }
                self.enter()?;
                if is_struct {
                    let r = self.parse_decls_onto_stack(false);
                    let decls = self.decl_stack.split_off(base);
                    r?;
                    self.depth -= 1;
                    let end = self.expect(Tok::RBrace, "'}'")?;
                    let span = self.span(t.start, end.end);
                    let mut lit = StructLit::new(decls, span);
                    lit.refs = self.refs;
                    self.refs |= outer;
                    Ok(Expr {
                        kind: ExprKind::Struct(Box::new(lit)),
                        span,
                    })
                } else {
                    let r = self.parse_elems_onto_stack();
                    let elems = self.elem_stack.split_off(base);
                    r?;
                    self.depth -= 1;
                    let end = self.bump();
                    Ok(Expr {
                        kind: ExprKind::List(elems),
                        span: self.span(t.start, end.end),
                    })
                }
            }
            Tok::Eof => perr("unexpected EOF", t.start),
            _ => perr(format!("unexpected {}", self.describe()), t.start),
        }
    }

    /// The expression of an interpolation (this parser's whole source range).
    fn parse_interpolation(&mut self) -> PResult<Expr> {
        self.enter()?;
        self.skip_seps();
        let e = self.parse_expr()?;
        self.skip_seps();
        if self.peek() != Tok::Eof {
            return perr("invalid interpolation", self.off());
        }
        Ok(e)
    }

    /// Parses the struct or list literal starting at the current token (the last one scanned,
    /// its contents not scanned yet) straight from the source as long as it holds plain data:
    /// JSON-like values (one-line strings without escapes, decimal integers, `true`, `false`,
    /// `null`, nested literals of the same) under quoted or identifier labels, separated by
    /// commas or newlines, without comments. That is most of the data a render is given; its
    /// tokens are neither scanned nor dispatched one by one. The tree is the one the general
    /// parser builds (spans, line index and nesting limits included). At the first member
    /// that is not plain data, the members before it stay parsed (on the declaration or
    /// element stack above `base`), the scanner resumes after the last of them and `None`
    /// lets the general parser go on with the rest of the literal.
    #[inline(never)]
    fn try_data_literal(&mut self, is_struct: bool, base: usize) -> Option<Expr> {
        let t = self.cur;
        let mut pos = t.end;
        let close = if is_struct { b'}' } else { b']' };
        let r = self.data_members(&mut pos, self.depth + 1, is_struct, close);
        let (next, ins) = match r {
            Ok(()) => (pos, true),
            Err(resume) => {
                // no literal starting before the point reached is tried again
                self.data_from = pos.max(t.end);
                resume
            }
        };
        self.lx.pos = next;
        self.lx.insert_comma = ins;
        self.prev_end = next;
        self.refill();
        self.cur = self.toks.first().copied().unwrap_or(Token {
            tok: Tok::Eof,
            start: self.src.len(),
            end: self.src.len(),
        });
        r.ok()?;
        let span = self.span(t.start, pos);
        let kind = if is_struct {
            let decls = self.decl_stack.split_off(base);
            let mut lit = StructLit::new(decls, span);
            lit.refs = 0; // plain data refers to nothing
            ExprKind::Struct(Box::new(lit))
        } else {
            ExprKind::List(self.elem_stack.split_off(base))
        };
        Some(Expr { kind, span })
    }

    /// The members of a plain-data literal from `*pos` (just past its opening bracket) to
    /// its closing bracket `close` included, at depth `d`, pushed on the declaration or
    /// element stack. At a member that is not plain data: the stacks and the line index as
    /// they were after the last member parsed, and where the scanner resumes (with whether
    /// a value precedes, i.e. a newline there separates).
    fn data_members(
        &mut self,
        pos: &mut usize,
        d: usize,
        is_struct: bool,
        close: u8,
    ) -> Result<(), (usize, bool)> {
        let b = self.lx.b;
        let mut resume = (*pos, false);
        let mut marks = (
            self.decl_stack.len(),
            self.elem_stack.len(),
            self.lx.line_starts.len(),
        );
        self.data_ws(pos);
        loop {
            let ok = match b.get(*pos) {
                Some(&c) if c == close => {
                    *pos += 1;
                    return Ok(());
                }
                Some(_) => self.data_member(pos, d, is_struct).is_some(),
                None => false,
            };
            let more = ok && {
                // the member is complete once a separator or the end follows (`a: "b": c`
                // is not): then the scanner may resume after it
                let after = (*pos, true);
                let after_marks = (
                    self.decl_stack.len(),
                    self.elem_stack.len(),
                    self.lx.line_starts.len(),
                );
                // a comma or a newline separates members; a comma may follow the last one
                let nl = self.data_ws(pos);
                let sep = match b.get(*pos) {
                    Some(b',') => {
                        *pos += 1;
                        self.data_ws(pos);
                        true
                    }
                    Some(&c) => c == close || nl,
                    None => false,
                };
                if sep {
                    resume = after;
                    marks = after_marks;
                }
                sep
            };
            if !more {
                self.decl_stack.truncate(marks.0);
                self.elem_stack.truncate(marks.1);
                self.lx.line_starts.truncate(marks.2);
                return Err(resume);
            }
        }
    }

    /// One member of a plain-data literal (a field `label: value`, or a list element).
    fn data_member(&mut self, pos: &mut usize, d: usize, is_struct: bool) -> Option<()> {
        if !is_struct {
            let value = self.data_value(pos, d)?;
            self.elem_stack.push(ListElem::Expr(value));
            return Some(());
        }
        let b = self.lx.b;
        let ls = *pos;
        let c = *b.get(ls)?;
        let (label, le) = if c == b'"' {
            let (text, le) = self.data_str(ls)?;
            (Label::Str(text.to_string(), self.span(ls, le)), le)
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c == b'#' {
            let mut le = ls + 1;
            while b.get(le).is_some_and(|&c| is_ident_char(c)) {
                le += 1;
            }
            let text = self.src.get(ls..le)?;
            // `_` is no label; `#"…"` is a string, `_|_` no identifier
            if text == "_" || (c == b'#' && matches!(b.get(ls + 1), Some(b'"' | b'\''))) {
                return None;
            }
            (Label::Ident(text.to_string(), self.span(ls, le)), le)
        } else {
            return None;
        };
        *pos = le;
        while matches!(b.get(*pos), Some(b' ' | b'\t' | b'\r')) {
            *pos += 1;
        }
        if b.get(*pos) != Some(&b':') {
            return None;
        }
        *pos += 1;
        self.data_ws(pos);
        let value = self.data_value(pos, d)?;
        let span = self.span(ls, *pos);
        self.decl_stack.push(Decl::Field(Field {
            label,
            constraint: Constraint::None,
            value,
            rare: None,
            comments: Comments::default(),
            span,
        }));
        Some(())
    }

    /// Skips spaces, tabs and newlines (recorded in the line index) from `pos`; whether
    /// there was a newline. Inline for the usual cases, none or the one space after a colon.
    #[inline(always)]
    fn data_ws(&mut self, pos: &mut usize) -> bool {
        let b = self.lx.b;
        match b.get(*pos) {
            Some(b' ') if !matches!(b.get(*pos + 1), Some(b' ' | b'\t' | b'\r' | b'\n')) => {
                *pos += 1;
                false
            }
            Some(b' ' | b'\t' | b'\r' | b'\n') => self.data_ws_run(pos),
            _ => false,
        }
    }

    #[inline(never)]
    fn data_ws_run(&mut self, pos: &mut usize) -> bool {
        let b = self.lx.b;
        let mut nl = false;
        while let Some(&c) = b.get(*pos) {
            match c {
                b' ' | b'\t' | b'\r' => *pos = skip_run(b, *pos, c),
                b'\n' => {
                    self.lx.line_starts.push(*pos + 1);
                    *pos += 1;
                    nl = true;
                }
                _ => break,
            }
        }
        nl
    }

    /// The text of a one-line `"…"` literal without escapes starting at `pos`, and its end.
    #[inline]
    fn data_str(&self, pos: usize) -> Option<(&'s str, usize)> {
        let b = self.lx.b;
        let n = plain_str_len(b, pos + 1)?;
        if n == 0 && b.get(pos + 2) == Some(&b'"') {
            return None; // a multi-line string
        }
        let end = pos + n + 2;
        Some((self.src.get(pos + 1..end - 1)?, end))
    }

    /// A plain value starting at `*pos` (in a literal whose contents are at depth `d`).
    fn data_value(&mut self, pos: &mut usize, d: usize) -> Option<Expr> {
        let b = self.lx.b;
        let start = *pos;
        let c = *b.get(start)?;
        let kind = match c {
            b'"' => {
                let (text, end) = self.data_str(start)?;
                *pos = end;
                ExprKind::Str(text.to_string())
            }
            b'0'..=b'9' => {
                let mut end = start + 1;
                while b.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                // fractions, exponents, multipliers, `_` separators and other bases: not here
                if b.get(end).is_some_and(|&c| is_ident_char(c) || c == b'.') {
                    return None;
                }
                let kind = parse_int_lit(self.src.get(start..end)?)?;
                *pos = end;
                kind
            }
            b't' | b'f' | b'n' => {
                let mut end = start + 1;
                while b.get(end).is_some_and(|&c| is_ident_char(c)) {
                    end += 1;
                }
                let kind = match b.get(start..end)? {
                    b"true" => ExprKind::Bool(true),
                    b"false" => ExprKind::Bool(false),
                    b"null" => ExprKind::Null,
                    _ => return None,
                };
                *pos = end;
                kind
            }
            b'{' | b'[' => {
                // a nested literal costs the general parser at most 3 levels of nesting: near
                // the limit, the general parser takes over (and gives its error)
                let d = d + 3;
                if d + 3 > self.max_nest {
                    return None;
                }
                let (is_struct, close) = if c == b'{' {
                    (true, b'}')
                } else {
                    (false, b']')
                };
                let base = if is_struct {
                    self.decl_stack.len()
                } else {
                    self.elem_stack.len()
                };
                *pos += 1;
                self.data_members(pos, d, is_struct, close).ok()?;
                let span = self.span(start, *pos);
                let kind = if is_struct {
                    let decls = self.decl_stack.split_off(base);
                    let mut lit = StructLit::new(decls, span);
                    lit.refs = 0; // plain data refers to nothing
                    ExprKind::Struct(Box::new(lit))
                } else {
                    ExprKind::List(self.elem_stack.split_off(base))
                };
                return Some(Expr { kind, span });
            }
            _ => return None,
        };
        Some(Expr {
            kind,
            span: self.span(start, *pos),
        })
    }

    /// List elements up to (not including) `]`.
    fn parse_elems_onto_stack(&mut self) -> PResult<()> {
        let mut n = 0;
        loop {
            self.skip_seps();
            let e = match self.peek() {
                Tok::RBrack => break,
                Tok::Ellipsis => {
                    let s = self.bump();
                    let e = if matches!(self.peek(), Tok::RBrack | Tok::Comma | Tok::Newline) {
                        None
                    } else {
                        Some(Box::new(self.parse_expr()?))
                    };
                    ListElem::Ellipsis(e, self.span(s.start, self.prev_end()))
                }
                Tok::Ident(k) if (k == "for" || k == "if") && !self.is_field_label_ahead() => {
                    ListElem::Comprehension(self.parse_comprehension()?)
                }
                _ if n == 0 => ListElem::Expr(self.parse_label_alias_expr(Tok::RBrack, "a list")?),
                _ => ListElem::Expr(self.parse_expr()?),
            };
            n += 1;
            self.elem_stack.push(e);
            if self.is_sep() {
                continue;
            }
            if self.peek() != Tok::RBrack {
                return perr(
                    format!("missing ',' in list literal, found {}", self.describe()),
                    self.off(),
                );
            }
        }
        Ok(())
    }

    /// `if: x`, `for?: x`: the keyword is used as a field label.
    fn is_field_label_ahead(&mut self) -> bool {
        match self.peek_at(1) {
            Tok::Colon => true,
            Tok::Question | Tok::Bang => self.peek_at(2) == Tok::Colon,
            _ => false,
        }
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Tok::Newline {
            self.bump();
        }
    }
}

/// Whether `t`, after an operand, ends the expression (it cannot continue it).
#[inline]
fn ends_operand(t: Tok<'_>) -> bool {
    matches!(
        t,
        Tok::Comma | Tok::Newline | Tok::Colon | Tok::RBrace | Tok::RBrack | Tok::RParen | Tok::Eof
    )
}

fn parse_int_lit(s: &str) -> Option<ExprKind> {
    // the common case, plain decimal digits: no copy without the `_` separators
    if !s.is_empty() && s.len() <= 18 && s.bytes().all(|c| c.is_ascii_digit()) {
        return Some(ExprKind::Int(
            s.bytes().fold(0i64, |n, c| n * 10 + (c - b'0') as i64),
        ));
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let (radix, digits) = if let Some(r) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        (16, r)
    } else if let Some(r) = clean
        .strip_prefix("0o")
        .or_else(|| clean.strip_prefix("0O"))
    {
        (8, r)
    } else if let Some(r) = clean
        .strip_prefix("0b")
        .or_else(|| clean.strip_prefix("0B"))
    {
        (2, r)
    } else {
        (10, clean.as_str())
    };
    if radix != 10 {
        return i64::from_str_radix(digits, radix).ok().map(ExprKind::Int);
    }
    // SI suffix
    let (num, mult): (&str, f64) = {
        let b = digits.as_bytes();
        let (body, bin) = if let Some(b) = digits.strip_suffix('i') {
            (b, true)
        } else {
            (digits, false)
        };
        let last = body.chars().last().unwrap_or('0');
        let exp = match last {
            'K' => 1,
            'M' => 2,
            'G' => 3,
            'T' => 4,
            'P' => 5,
            'E' => 6,
            'Z' => 7,
            'Y' => 8,
            _ => 0,
        };
        let _ = b;
        if exp == 0 {
            (digits, 1.0)
        } else {
            let base: f64 = if bin { 1024.0 } else { 1000.0 };
            (&body[..body.len() - 1], base.powi(exp))
        }
    };
    if mult == 1.0 {
        return num.parse::<i64>().ok().map(ExprKind::Int);
    }
    let f: f64 = num.parse().ok()?;
    let v = f * mult;
    if v.fract() != 0.0 || v.abs() > 9.2e18 {
        return None;
    }
    Some(ExprKind::Int(v as i64))
}

pub enum Seg {
    Lit(String),
    Byte(u8),
    /// Source byte range of an interpolated expression.
    Expr(usize, usize),
}

/// Whether a raw string token is a one-line `"…"` literal without escapes or interpolations,
/// whose value is its text between the quotes.
fn is_plain_string(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() >= 2
        && b[0] == b'"'
        && b[b.len() - 1] == b'"'
        && !b[1..b.len() - 1]
            .iter()
            .any(|&c| c == b'"' || c == b'\\' || c == b'\n' || c == b'\r')
}

/// Decodes a raw string token (with quotes and hashes) starting at source offset `base`.
/// Returns the segments and whether it is a bytes literal.
pub fn decode_string(raw: &str, base: usize) -> PResult<(Vec<Seg>, bool)> {
    let b = raw.as_bytes();
    let mut hashes = 0;
    while b.get(hashes) == Some(&b'#') {
        hashes += 1;
    }
    let q = b.get(hashes).copied().unwrap_or(b'"');
    let bytes = q == b'\'';
    let multi = b.get(hashes + 1) == Some(&q) && b.get(hashes + 2) == Some(&q);
    let qlen = if multi { 3 } else { 1 };
    let cstart = hashes + qlen;
    let cend = raw.len().saturating_sub(qlen + hashes);
    if cend < cstart {
        return perr("invalid string", base);
    }
    let content = &raw[cstart..cend];
    let mut indent = "";
    let mut body_start = 0;
    if multi {
        // first line must be empty
        match content.find('\n') {
            Some(p) if content[..p].trim().is_empty() => body_start = p + 1,
            _ => return perr("multi-line string must start with a newline", base),
        }
        let last_nl = content.rfind('\n').unwrap_or(0);
        indent = &content[last_nl + 1..];
        if !indent.chars().all(|c| c == ' ' || c == '\t') {
            return perr(
                "closing quote of multi-line string must be on its own line",
                base + cend,
            );
        }
    }
    let content_end = if multi {
        content.rfind('\n').unwrap_or(0)
    } else {
        content.len()
    };
    let mut segs: Vec<Seg> = Vec::new();
    let mut cur = String::new();
    let cb = content.as_bytes();
    let mut i = body_start;
    let mut at_line_start = multi;
    let abs = |i: usize| base + cstart + i;
    while i < content_end {
        if at_line_start {
            at_line_start = false;
            if content[i..].starts_with(indent) {
                i += indent.len();
                continue;
            } else if content[i..content_end].starts_with('\n')
                || content[i..]
                    .trim_start_matches([' ', '\t'])
                    .starts_with('\n')
            {
                // blank line: allowed
            } else if !indent.is_empty() {
                return perr("invalid whitespace in multi-line string", abs(i));
            }
        }
        let c = cb[i];
        if c == b'\\' {
            let mut k = 1;
            let mut active = true;
            for _ in 0..hashes {
                if cb.get(i + k) != Some(&b'#') {
                    active = false;
                    break;
                }
                k += 1;
            }
            if !active {
                cur.push('\\');
                i += 1;
                continue;
            }
            let e = cb.get(i + k).copied().unwrap_or(0);
            i += k + 1;
            match e {
                b'n' => cur.push('\n'),
                b't' => cur.push('\t'),
                b'r' => cur.push('\r'),
                b'a' => cur.push('\u{7}'),
                b'b' => cur.push('\u{8}'),
                b'f' => cur.push('\u{c}'),
                b'v' => cur.push('\u{b}'),
                b'\\' => cur.push('\\'),
                b'"' => cur.push('"'),
                b'\'' => cur.push('\''),
                b'/' => cur.push('/'),
                b'\n' if multi => {
                    at_line_start = true;
                }
                b'u' | b'U' => {
                    let n = if e == b'u' { 4 } else { 8 };
                    let hex = content.get(i..i + n).ok_or_else(|| PErr {
                        msg: "invalid escape".into(),
                        offset: abs(i),
                    })?;
                    let v = u32::from_str_radix(hex, 16).map_err(|_| PErr {
                        msg: "invalid escape".into(),
                        offset: abs(i),
                    })?;
                    cur.push(char::from_u32(v).ok_or_else(|| PErr {
                        msg: "invalid unicode escape".into(),
                        offset: abs(i),
                    })?);
                    i += n;
                }
                b'x' => {
                    let hex = content.get(i..i + 2).ok_or_else(|| PErr {
                        msg: "invalid escape".into(),
                        offset: abs(i),
                    })?;
                    let v = u8::from_str_radix(hex, 16).map_err(|_| PErr {
                        msg: "invalid escape".into(),
                        offset: abs(i),
                    })?;
                    i += 2;
                    if bytes {
                        if !cur.is_empty() {
                            segs.push(Seg::Lit(std::mem::take(&mut cur)));
                        }
                        segs.push(Seg::Byte(v));
                    } else {
                        return perr("\\x escape not allowed in string", abs(i));
                    }
                }
                b'0'..=b'7' => {
                    let oct = content.get(i - 1..i + 2).ok_or_else(|| PErr {
                        msg: "invalid escape".into(),
                        offset: abs(i),
                    })?;
                    let v = u8::from_str_radix(oct, 8).map_err(|_| PErr {
                        msg: "invalid escape".into(),
                        offset: abs(i),
                    })?;
                    i += 2;
                    if !cur.is_empty() {
                        segs.push(Seg::Lit(std::mem::take(&mut cur)));
                    }
                    segs.push(Seg::Byte(v));
                }
                b'(' => {
                    let rstart = cstart + i;
                    let mut sub = Lexer::new(raw, rstart, cend);
                    let mut depth = 1;
                    let end_r;
                    loop {
                        let t = sub.next().map_err(|(m, o)| PErr {
                            msg: m,
                            offset: base + o,
                        })?;
                        match t.tok {
                            Tok::LParen => depth += 1,
                            Tok::RParen => {
                                depth -= 1;
                                if depth == 0 {
                                    end_r = t.start;
                                    i = t.end - cstart;
                                    break;
                                }
                            }
                            Tok::Eof => return perr("unterminated interpolation", base + rstart),
                            _ => {}
                        }
                    }
                    if !cur.is_empty() {
                        segs.push(Seg::Lit(std::mem::take(&mut cur)));
                    }
                    segs.push(Seg::Expr(base + rstart, base + end_r));
                }
                _ => return perr("unknown escape sequence", abs(i)),
            }
            continue;
        }
        if c == b'\n' {
            cur.push('\n');
            i += 1;
            at_line_start = multi;
            continue;
        }
        // push the utf-8 char
        let ch = content[i..].chars().next().unwrap_or('\u{fffd}');
        cur.push(ch);
        i += ch.len_utf8();
    }
    if !cur.is_empty() || segs.is_empty() {
        segs.push(Seg::Lit(cur));
    }
    Ok((segs, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parse with and without the plain-data path: the outcome's debug text (the whole
    /// tree with its spans, or the error and its offset) and the line index.
    fn both_ways(src: &str) -> [String; 2] {
        [true, false].map(|data| {
            let mut p = Parser::new(src, 0, src.len(), 0);
            p.data_path = data;
            let r = p.parse_file("t.cue");
            match p.finish(r) {
                Ok(f) => format!("{f:?}\n{:?}", p.take_line_starts()),
                Err(e) => format!("error {} at {}", e.msg, e.offset),
            }
        })
    }

    /// The plain-data path gives the general parser's tree, line index and errors.
    #[test]
    fn data_path_matches_general_parser() {
        let cases = [
            "a: {\"x\": 1, \"y\": [1, 2, \"s\"], \"z\": {\"w\": null, \"v\": true, \"u\": false}}",
            "a: {\n  \"x\": 1,\n  \"y\": [\n    1,\n    2\n  ],\n}\n",
            "a: {\"x\": 1\n\"y\": 2}\nb: [1\n,2\n]",
            "a: {}\nb: []\nc: [{}, [], [[]]]\nd: {\"\": \"\"}",
            "a: {\"x\": \"a\\\"b\", \"y\": 1}",
            "a: {\"x\": 1, \"y\": -1, \"z\": 2}",
            "a: {\"x\": 1.5, \"y\": 1e3, \"z\": 1Ki, \"w\": 0x10, \"v\": 1_000}",
            "a: {\"x\": 1, // c\n\"y\": 2}",
            "a: {\"x\": 1,\n// doc\n\"y\": 2}",
            "a: {\"x\": \"y\": 1, \"z\": 2}",
            "a: {\"x\": 1 @attr(v), \"y\": 2}",
            "a: {\"x\"\n: 1}",
            "a: {\"x\": 1 \"y\": 2}",
            "a: {\"x\": 1,, \"y\": 2}",
            "a: {\"x\": 1 | 2, \"y\": 2}",
            "a: {\"x\": 1\n| 2}",
            "a: {\"x\": \"\"\"\n  m\n  \"\"\"}",
            "a: {\"x\": \"é\", \"y\": \"\\u00e9\"}",
            "a: {\"x\": 1}.x\nb: [1, 2][0]\nc: {\"x\": 1} & {\"y\": 2}",
            "a: {x: 1, _: 2}",
            "a: {x: 1, #y: 2, _z: 3, $w: 4, \"q\": r}",
            "a: {#\"x\"#: 1}",
            "a: [true, false, null, nil, truex]",
            "a: {\"x\": [1, {\"y\": [2, {\"z\": x}]}], \"w\": 3}",
            "a: {\"x\": 1}\nb: 'unterminated",
            "a: {\"x\": 1 ^ 2}",
            "a: {\"x\": 1}\nb: {\"y\": \"unterminated}\n",
            "a: {\"x\": 1,\r\n\t\"y\": 2\r\n}",
            "a: {\"x\": 1",
            "a: [1, 2",
            "a: {\"x\": 1}}",
            "a: {\"x\":\n\n  1}",
            "x: \"\\({\"a\": 1}.a)\"",
            "a: {\"x\": 1, \"y\": {\"z\": 2,}, }",
            "a: [for x in [1] {x}, 2]",
            "a: [..., 1]\nb: [1, ...]",
            "a: {\"x\": 1, ...}",
            "a: {\"x\"?: 1}\nb: {\"x\"!: 1}",
            "a: {\"x\" : 1, \"y\"\t:\t2}",
            "a: {\"x\": 012, \"y\": 0, \"z\": 99999999999999999999}",
        ];
        for src in cases {
            let [fast, general] = both_ways(src);
            assert_eq!(fast, general, "{src:?}");
        }
        // nesting at and past the limit: the same error (or tree) either way (on a stack
        // as large as the one `crate::parse` gives a deep file)
        std::thread::Builder::new()
            .stack_size(1 << 30)
            .spawn(|| {
                for n in [300, 330, 340, 1000, 1200] {
                    for (open, close) in [("{\"a\": ", "}"), ("[", "]")] {
                        let src = format!("x: {}1{}", open.repeat(n), close.repeat(n));
                        let [fast, general] = both_ways(&src);
                        assert_eq!(fast, general, "depth {n} {open}");
                    }
                }
            })
            .expect("thread")
            .join()
            .expect("deep nesting");
    }

    /// The same over every CUE source of the conformance corpus and the benchmark files
    /// (`.cue` files, and the `.cue` sections of cue-lang's `.txtar` tests).
    #[test]
    fn data_path_matches_general_parser_on_corpus() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
        let mut dirs = vec![root];
        let mut sources = 0;
        while let Some(d) = dirs.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    if p.file_name().is_some_and(|n| n != "node_modules") {
                        dirs.push(p);
                    }
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                let mut srcs = Vec::new();
                match p.extension().and_then(|x| x.to_str()) {
                    Some("cue") => srcs.push(text),
                    Some("txtar") => {
                        let mut cur: Option<String> = None;
                        for line in text.lines() {
                            if line.starts_with("-- ") && line.ends_with(" --") {
                                srcs.extend(cur.take());
                                if line.trim_end_matches(" --").ends_with(".cue") {
                                    cur = Some(String::new());
                                }
                            } else if let Some(c) = cur.as_mut() {
                                c.push_str(line);
                                c.push('\n');
                            }
                        }
                        srcs.extend(cur);
                    }
                    _ => {}
                }
                for src in srcs {
                    let [fast, general] = both_ways(&src);
                    assert_eq!(fast, general, "{}", p.display());
                    sources += 1;
                }
            }
        }
        eprintln!("{sources} sources compared");
    }

    fn parse(s: &str) -> File {
        let mut p = Parser::new(s, 0, s.len(), 0);
        let r = p.parse_file("t.cue");
        p.finish(r)
            .map_err(|e| format!("{} at {}", e.msg, e.offset))
            .expect("parse")
    }

    #[test]
    fn fields_and_comments() {
        let f = parse("import \"strings\"\n// +patchKey=name\na: b: 1\nc?: int\n[string]: _\n");
        assert_eq!(f.imports.len(), 1);
        assert_eq!(f.body.decls.len(), 3);
        let Decl::Field(fd) = &f.body.decls[0] else {
            panic!()
        };
        assert_eq!(fd.comments, vec!["+patchKey=name".to_string()]);
    }

    /// Doc comments of declarations at several levels, found in one pass.
    #[test]
    fn doc_comments_nested() {
        let f = parse(
            "// a doc\na: {\n\t// b doc\n\tb: 1\n\tc: 2\n\t// d1\n\t// d2\n\td: 3\n}\n// e doc\ne: 4\n",
        );
        let docs = |d: &Decl| match d {
            Decl::Field(f) => f.comments.to_vec(),
            _ => vec![],
        };
        let top = &f.body.decls;
        assert_eq!(docs(&top[0]), ["a doc"]);
        assert_eq!(docs(&top[1]), ["e doc"]);
        let Decl::Field(a) = &top[0] else { panic!() };
        let ExprKind::Struct(lit) = &a.value.kind else {
            panic!()
        };
        let inner: Vec<Vec<String>> = lit.decls.iter().map(docs).collect();
        assert_eq!(
            inner,
            [
                vec!["b doc".to_string()],
                vec![],
                vec!["d1".into(), "d2".into()]
            ]
        );
    }

    /// Labels taken straight from their token (`name:`, `"name":`) are the ones the general
    /// path makes; `_` is still no label.
    #[test]
    fn labels_from_tokens() {
        let f = parse("true: 1\nnull: 2\n\"a b\": 3\nif: 4\n#D: 5\nx: y: 6\n\"\\u0041\": 7\n");
        let labels: Vec<String> = f
            .body
            .decls
            .iter()
            .map(|d| match d {
                Decl::Field(Field {
                    label: Label::Ident(n, s),
                    ..
                }) => format!("ident {n} {}..{}", s.start, s.end),
                Decl::Field(Field {
                    label: Label::Str(n, s),
                    ..
                }) => format!("str {n} {}..{}", s.start, s.end),
                d => format!("{d:?}"),
            })
            .collect();
        assert_eq!(
            labels,
            [
                "ident true 0..4",
                "ident null 8..12",
                "str a b 16..21",
                "ident if 25..27",
                "ident #D 31..33",
                "ident x 37..38",
                "str A 45..53"
            ]
        );
        let mut p = Parser::new("_: 1", 0, 4, 0);
        let r = p.parse_file("t.cue");
        assert!(p.finish(r).is_err());
    }

    /// The shortcuts for a lone scalar field value and a lone struct or list literal give what
    /// the precedence climb gives when something follows them.
    #[test]
    fn literal_shortcuts_and_what_follows() {
        let f = parse(
            "a: 1\nb: {x: 1} & c\nd: [1, 2][0]\ne: {x: 1}.x\ng: \"s\" @tag(v)\nh: 2 | *3\ni: j: 4\n",
        );
        let kinds: Vec<String> = f
            .body
            .decls
            .iter()
            .map(|d| match d {
                Decl::Field(fd) => {
                    let k = match &fd.value.kind {
                        ExprKind::Int(n) => format!("int {n}"),
                        ExprKind::Binary(op, l, _) => {
                            format!("{} {}..{}", op.as_str(), l.span.start, l.span.end)
                        }
                        ExprKind::Index(..) => "index".into(),
                        ExprKind::Selector(_, n, _) => format!("sel {n}"),
                        ExprKind::Str(s) => format!("str {s} attrs {}", fd.attrs().len()),
                        ExprKind::Struct(lit) => format!("struct {}", lit.decls.len()),
                        k => format!("{k:?}"),
                    };
                    format!("{k} {}..{}", fd.span.start, fd.span.end)
                }
                d => format!("{d:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "int 1 0..4",
                "& 8..14 5..18",
                "index 19..31",
                "sel x 32..43",
                "str s attrs 1 44..58",
                "| 62..63 59..68",
                "struct 1 69..76"
            ]
        );
    }

    #[test]
    fn interpolation() {
        let f = parse("a: \"x\\(1 + 2)y\"");
        let Decl::Field(fd) = &f.body.decls[0] else {
            panic!()
        };
        assert!(matches!(fd.value.kind, ExprKind::Interp { .. }));
    }

    #[test]
    fn multiline() {
        let f = parse("a: \"\"\"\n    foo\n      bar\n    \"\"\"\n");
        let Decl::Field(fd) = &f.body.decls[0] else {
            panic!()
        };
        match &fd.value.kind {
            ExprKind::Str(s) => assert_eq!(s, "foo\n  bar"),
            k => panic!("{k:?}"),
        }
    }
}
