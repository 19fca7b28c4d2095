//! Options the example servers share, taken out of their arguments wherever they stand (before
//! or after the positional ones), as `--NAME VALUE` or `--NAME=VALUE`. Included by each server
//! with `#[path = "shared/options.rs"] mod options;` (a directory without `main.rs` is no
//! example of its own).

/// Takes `--NAME VALUE` or `--NAME=VALUE` (`name` with its dashes) out of `args`: its value,
/// or `None` if the option is not there.
#[allow(dead_code)] // each example uses what it needs of this file
pub fn take_option(args: &mut Vec<String>, name: &str) -> Result<Option<String>, String> {
    let with_equals = format!("{name}=");
    let Some(at) = args
        .iter()
        .position(|a| a == name || a.starts_with(&with_equals))
    else {
        return Ok(None);
    };
    let option = args.remove(at);
    match option.strip_prefix(&with_equals) {
        Some(value) => Ok(Some(value.to_string())),
        None if at < args.len() => Ok(Some(args.remove(at))),
        None => Err(format!("{name} needs a value")),
    }
}

/// Takes `--max-connections N`: at most N connections open at once, the next clients
/// waiting in the kernel's backlog.
#[allow(dead_code)] // each example uses what it needs of this file
pub fn take_max_connections(args: &mut Vec<String>) -> Result<Option<usize>, String> {
    let Some(value) = take_option(args, "--max-connections")? else {
        return Ok(None);
    };
    match value.parse() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(format!(
            "--max-connections: {value:?} is not a positive number"
        )),
    }
}
