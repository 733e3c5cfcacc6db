//! `${VAR}` substitution in string values, so secrets stay out of files.
//!
//! `${NAME}` is replaced by the variable's value; `$${` is a literal `${`; a
//! `$` followed by anything else is kept. A missing variable is an error
//! naming it and the path of the value that referenced it.

use super::ConfigError;

/// Substitutes every `${NAME}` in `input`, looking names up with `lookup`.
pub(crate) fn substitute(
    input: &str,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or_else(|| {
                ConfigError::invalid(
                    path,
                    "unterminated \"${\" (write \"$${\" for a literal \"${\")",
                )
            })?;
            let name = &tail[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ConfigError::invalid(
                    path,
                    format!(
                        "invalid environment variable name {name:?} in \"${{{name}}}\" \
                         (use letters, digits and '_'; write \"$${{\" for a literal \"${{\")"
                    ),
                ));
            }
            let value = lookup(name).ok_or_else(|| {
                ConfigError::invalid(path, format!("environment variable {name} is not set"))
            })?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PASS" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_escapes() {
        let s = |i| substitute(i, "a.b", &env).unwrap();
        assert_eq!(s("${PASS}"), "s3cr3t");
        assert_eq!(s("x-${PASS}-${EMPTY}-y"), "x-s3cr3t--y");
        assert_eq!(s("$${PASS}"), "${PASS}");
        assert_eq!(s("cost: $5 and $$"), "cost: $5 and $$");
        assert_eq!(s("no vars"), "no vars");
        // A substituted value is not substituted again.
        let nested = |n: &str| (n == "A").then(|| "${PASS}".to_string());
        assert_eq!(substitute("${A}", "p", &nested).unwrap(), "${PASS}");
    }

    #[test]
    fn errors_name_the_variable_and_path() {
        let e = substitute("${NOPE}", "channels.mail.password", &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "channels.mail.password: environment variable NOPE is not set"
        );
        let e = substitute("${OPEN", "x", &env).unwrap_err();
        assert!(e.to_string().starts_with("x: unterminated"));
        let e = substitute("${1X}", "x", &env).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid environment variable name \"1X\"")
        );
    }
}
