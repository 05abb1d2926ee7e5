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
    if files.is_empty() {
        return Err(Error::Usage("give one or more .cue files".into()));
    }
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let src = std::fs::read_to_string(file).map_err(|e| Error::File {
            path: file.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        sources.push((file.display().to_string(), src));
    }
    let mut runtime = cue::Runtime::new();
    runtime.skip_teardown();
    let named: Vec<(&str, &str)> = sources
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    // several files are one package, evaluated as one unit, as `cue` takes them
    let program = runtime.compile_files(&named)?;
    same_package(&program, &sources)?;
    let value = program.eval()?;
    Ok((program, value))
}

/// Files given together must declare the same package (or none), as `cue` requires.
fn same_package(program: &cue::Program, sources: &[(String, String)]) -> Result<(), Error> {
    let packages = program.packages();
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
    let (program, value) = load(files)?;
    validate(&value)?;
    let selected = select(&value, expr)?;
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
    let (program, value) = load(files)?;
    validate(&value)?;
    let selected = select(&value, expr)?;
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
    let text = program.eval_syntax(expr, &opts)?;
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
