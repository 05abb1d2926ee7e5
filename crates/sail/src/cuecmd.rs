//! `sail cue export | eval | vet`: the CUE engine on files, like the `cue` command for what the
//! two share: results on stdout, errors on stderr, exit 1 on error.

use crate::Error;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Out {
    Json,
    Yaml,
}

/// The compiled program and its value. `sail cue` exits as soon as it has printed the result,
/// so nothing it evaluates is freed piece by piece: the evaluation's working memory is left to
/// the operating system (`skip_teardown`), and so are the program and value once used
/// ([`exit_without_freeing`]). Freeing them took about a fifth of a small file's export.
fn load(files: &[PathBuf]) -> Result<(cue::Program, cue::Value), Error> {
    let l = load_selecting(files, None)?;
    Ok((l.program, l.value))
}

/// What [`load_selecting`] gives.
struct Loaded {
    program: cue::Program,
    value: cue::Value,
    /// The path to select (`None`: the whole value).
    path: Option<String>,
    /// For an `-e` expression: the length of the text before it on its line (see
    /// [`expression_error`]).
    prefix: Option<usize>,
}

/// The hidden field an `-e` expression that is not a path is evaluated as (see [`is_path`]).
const EXPR_FIELD: &str = "_sail_expression";

/// Whether `-e` is a path [`cue::Value::lookup`] takes (`a.b`, `#D`, `_h`, `l.0`, `a."k.y"`);
/// anything else is an expression.
fn is_path(expr: &str) -> bool {
    let mut rest = expr;
    loop {
        let seg_end = if let Some(q) = rest.strip_prefix('"') {
            // a quoted segment: up to its closing quote (escapes skipped)
            let mut esc = false;
            let Some(end) = q.char_indices().find_map(|(i, c)| {
                let close = c == '"' && !esc;
                esc = c == '\\' && !esc;
                close.then_some(i + 2)
            }) else {
                return false;
            };
            end
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let seg = &rest[..end];
            if seg.is_empty()
                || !seg
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '#' | '$'))
            {
                return false;
            }
            end
        };
        match rest[seg_end..].strip_prefix('.') {
            Some(r) => rest = r,
            None => return seg_end == rest.len(),
        }
    }
}

/// Loads the files (several are one package, evaluated together as `cue` takes them) and, for
/// an `-e` that is not a path, the expression too: it is evaluated in the files' scope, as
/// `cue -e` does, as the hidden field [`EXPR_FIELD`] of a file named `--expression`. Gives the
/// program, its value and the path to select (`None`: the whole value).
fn load_selecting(files: &[PathBuf], expr: Option<&str>) -> Result<Loaded, Error> {
    if files.is_empty() {
        return Err(Error::Usage("give one or more .cue files".into()));
    }
    let mut sources = Vec::with_capacity(files.len() + 1);
    for file in files {
        let src = std::fs::read_to_string(file).map_err(|e| Error::File {
            path: file.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        sources.push((file.display().to_string(), src));
    }
    let mut runtime = cue::Runtime::new();
    runtime.skip_teardown();
    let compile = |sources: &[(String, String)]| {
        let named: Vec<(&str, &str)> = sources
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        runtime.compile_files(&named)
    };
    let mut program = compile(&sources)?;
    same_package(&program, &sources)?;
    let (path, prefix) = match expr {
        Some(e) if !is_path(e) => {
            // the expression's file belongs to the files' package, on one line (`package p,`)
            let clause = match program.packages().first() {
                Some(Some(p)) => format!("package {p}, "),
                _ => String::new(),
            };
            let head = format!("{clause}{EXPR_FIELD}: ");
            sources.push(("--expression".into(), format!("{head}{e}\n")));
            program = compile(&sources).map_err(|err| expression_error(err, head.len()))?;
            (Some(EXPR_FIELD.to_string()), Some(head.len()))
        }
        e => (e.map(str::to_string), None),
    };
    let value = program.eval()?;
    Ok(Loaded {
        program,
        value,
        path,
        prefix,
    })
}

/// An error about the `-e` expression as `cue` reports it: without the internal field's name
/// in its path, and with columns on the expression's line counted from the expression's start
/// (`prefix` is the length of the text before it).
fn expression_error(e: cue::Error, prefix: usize) -> cue::Error {
    let path = e.path();
    let path = if path == EXPR_FIELD {
        ""
    } else {
        path.strip_prefix(EXPR_FIELD)
            .and_then(|p| p.strip_prefix('.'))
            .unwrap_or(path)
    };
    let mut out = cue::Error::new(e.message()).with_path(path);
    for p in e.positions() {
        let mut p = p.clone();
        if p.file == "--expression" && p.line == 1 {
            p.col = (p.col as usize).saturating_sub(prefix).max(1) as u32;
        }
        out = out.with_pos(p);
    }
    out
}

/// [`expression_error`] on every CUE error of `err`, when there is an expression.
fn tidy(err: Error, prefix: Option<usize>) -> Error {
    let Some(n) = prefix else {
        return err;
    };
    match err {
        Error::Cue(e) => Error::Cue(expression_error(e, n)),
        Error::CueAll(all) => {
            Error::CueAll(all.into_iter().map(|e| expression_error(e, n)).collect())
        }
        other => other,
    }
}

/// Files given together must declare the same package (or none), as `cue` requires.
fn same_package(program: &cue::Program, sources: &[(String, String)]) -> Result<(), Error> {
    let mut packages = program.packages();
    packages.truncate(sources.len());
    let Some(first) = packages.first() else {
        return Ok(());
    };
    for (i, p) in packages.iter().enumerate().skip(1) {
        if p != first {
            let name = |p: &Option<String>| p.clone().unwrap_or_else(|| "(none)".into());
            return Err(Error::Usage(format!(
                "files of different packages: {} is package {}, {} is package {}",
                sources[0].0,
                name(first),
                sources.get(i).map_or("?", |s| s.0.as_str()),
                name(p)
            )));
        }
    }
    Ok(())
}

/// Leaves what a `sail cue` command evaluated to the operating system: the process exits right
/// after the command, and walking the program's syntax tree and the value to free them would
/// only delay that. (Only for these one-shot commands; nothing else in `sail` does this.)
fn exit_without_freeing<T>(x: T) {
    std::mem::forget(x);
}

/// The whole file must be free of errors: on failure, all of them are reported, as `cue` does.
fn validate(value: &cue::Value) -> Result<(), Error> {
    value
        .validate()
        .map_err(|first| Error::cue_all(first, value.errors()))
}

/// `value` as JSON text; on failure, every field that is incomplete or in error is reported.
fn json_text(value: &cue::Value) -> Result<String, Error> {
    value
        .to_json_string(true)
        .map_err(|first| Error::cue_all(first, value.export_errors()))
}

/// `value` as JSON; on failure, every field that is incomplete or in error is reported.
fn json_value(value: &cue::Value) -> Result<serde_json::Value, Error> {
    value
        .to_json()
        .map_err(|first| Error::cue_all(first, value.export_errors()))
}

fn select(value: &cue::Value, expr: Option<&str>) -> Result<cue::Value, Error> {
    match expr {
        None => Ok(value.clone()),
        Some(e) => value
            .lookup(e)
            .ok_or_else(|| Error::Failed(format!("reference {e:?} not found"))),
    }
}

/// `sail cue export`: the whole file must be free of errors; the selected value must be concrete.
pub fn export(files: &[PathBuf], expr: Option<&str>, out: Out) -> Result<(), Error> {
    let loaded = load_selecting(files, expr)?;
    let prefix = loaded.prefix;
    export_loaded(loaded, out).map_err(|e| tidy(e, prefix))
}

fn export_loaded(loaded: Loaded, out: Out) -> Result<(), Error> {
    let Loaded {
        program,
        value,
        path,
        ..
    } = loaded;
    validate(&value)?;
    let selected = select(&value, path.as_deref())?;
    if let Out::Json = out {
        // Straight from the value to text, without an intermediate JSON tree.
        let text = json_text(&selected)?;
        write_out(&text, true)?;
        exit_without_freeing((program, value, selected, text));
        return Ok(());
    }
    let json = json_value(&selected)?;
    print_json(&json, out)?;
    exit_without_freeing((program, value, selected, json));
    Ok(())
}

/// What `sail cue eval` shows and requires (`cue eval`'s flags of the same names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvalFlags {
    /// `-c/--concrete`: the selected value must be concrete (as `export` requires).
    pub concrete: bool,
    /// `-H/--show-hidden`: print hidden fields.
    pub hidden: bool,
    /// `-O/--show-optional`: print optional fields.
    pub optional: bool,
}

/// `sail cue eval`: the whole file must be free of errors (incomplete values are allowed unless
/// `--concrete`); the selected value is printed in CUE syntax as `cue eval` prints it, or, with
/// `--out json|yaml`, exported as `export` does.
pub fn eval(
    files: &[PathBuf],
    expr: Option<&str>,
    out: Option<Out>,
    flags: EvalFlags,
) -> Result<(), Error> {
    let loaded = load_selecting(files, expr)?;
    let prefix = loaded.prefix;
    eval_loaded(loaded, out, flags).map_err(|e| tidy(e, prefix))
}

fn eval_loaded(loaded: Loaded, out: Option<Out>, flags: EvalFlags) -> Result<(), Error> {
    let Loaded {
        program,
        value,
        path,
        ..
    } = loaded;
    validate(&value)?;
    let selected = select(&value, path.as_deref())?;
    if let Some(out) = out {
        let json = json_value(&selected)?;
        print_json(&json, out)?;
        exit_without_freeing((program, value, selected, json));
        return Ok(());
    }
    if flags.concrete {
        let errs = selected.export_errors();
        if let Some(first) = errs.first().cloned() {
            return Err(Error::cue_all(first, errs));
        }
    }
    let opts = cue::SyntaxOptions {
        hidden: flags.hidden,
        optional: flags.optional,
    };
    let text = program.eval_syntax(path.as_deref(), &opts)?;
    write_out(&text, false)?;
    exit_without_freeing((program, value, selected, text));
    Ok(())
}

/// `sail cue vet`: no errors anywhere.
pub fn vet(files: &[PathBuf]) -> Result<(), Error> {
    let (program, value) = load(files)?;
    validate(&value)?;
    exit_without_freeing((program, value));
    Ok(())
}

/// Writes the result to stdout and flushes it, so that a failed write is an error (exit 1) and
/// nothing is left buffered when the process exits.
fn write_out(text: &str, newline: bool) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

fn print_json(json: &serde_json::Value, out: Out) -> Result<(), Error> {
    match out {
        Out::Json => {
            let text =
                serde_json::to_string_pretty(json).map_err(|e| Error::Failed(e.to_string()))?;
            write_out(&text, true)
        }
        Out::Yaml => {
            let text = serde_saphyr::to_string(json).map_err(|e| Error::Failed(e.to_string()))?;
            write_out(&text, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_path;

    /// Paths are looked up; anything else is evaluated as an expression.
    #[test]
    fn paths_and_expressions() {
        for p in [
            "a",
            "a.b",
            "#D",
            "_h",
            "l.0",
            "a.\"k.y\".z",
            "$x",
            "\"a\\\"b\"",
        ] {
            assert!(is_path(p), "{p}");
        }
        for e in [
            "a + 1",
            "a[0]",
            "a.b & {x: 1}",
            "len(l)",
            "",
            "a.",
            ".a",
            "a..b",
            "\"x",
        ] {
            assert!(!is_path(e), "{e}");
        }
    }
}
