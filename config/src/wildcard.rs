//! LiteLLM's wildcard model names. A `*` in a model_name matches any run of characters
//! (slashes too): `openai/*` takes every OpenAI model, `anthropic/claude-*` every Claude, `*`
//! anything. A `*` in the deployment's `litellm_params.model` is filled with what the
//! model_name's matched, so the requested model passes through to the provider.

/// Whether a model_name (or a deployment's model) is a pattern.
pub fn is_pattern(name: &str) -> bool {
    name.contains('*')
}

/// What each `*` of `pattern` matched in `name`, in order; None when it does not match.
pub fn captures<'a>(pattern: &str, name: &'a str) -> Option<Vec<&'a str>> {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let mut rest = name.strip_prefix(first)?;
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the name itself.
        return rest.is_empty().then(Vec::new);
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in middle {
        let at = rest.find(part)?;
        out.push(&rest[..at]);
        rest = &rest[at + part.len()..];
    }
    let end = rest.len().checked_sub(last.len())?;
    if !rest.ends_with(last) {
        return None;
    }
    out.push(&rest[..end]);
    Some(out)
}

/// `model` with its `*`s filled by `captures` in order (a lone capture fills every one).
pub fn fill(model: &str, captures: &[&str]) -> String {
    let mut out = String::with_capacity(model.len() + 32);
    for (i, part) in model.split('*').enumerate() {
        if i > 0 {
            out.push_str(captures.get(i - 1).or(captures.last()).unwrap_or(&""));
        }
        out.push_str(part);
    }
    out
}

/// How specific a pattern is: its literal characters. The most specific matching pattern
/// serves a name, as LiteLLM sorts its pattern routes.
pub fn specificity(pattern: &str) -> usize {
    pattern.len() - pattern.matches('*').count()
}

/// The model_name patterns of a config, most specific first (ties in the order given).
pub fn by_specificity<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut patterns: Vec<String> = names.filter(|n| is_pattern(n)).cloned().collect();
    patterns.sort_by_key(|p| std::cmp::Reverse(specificity(p)));
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_filling() {
        assert_eq!(
            captures("openai/*", "openai/gpt-4.1-nano"),
            Some(vec!["gpt-4.1-nano"])
        );
        assert_eq!(captures("openai/*", "anthropic/claude"), None);
        assert_eq!(captures("*", "a/b/c"), Some(vec!["a/b/c"]));
        assert_eq!(
            captures("anthropic/claude-*", "anthropic/claude-3-5-haiku"),
            Some(vec!["3-5-haiku"])
        );
        assert_eq!(captures("a*-x-*", "a1-x-2"), Some(vec!["1", "2"]));
        assert_eq!(captures("gpt-4o", "gpt-4o"), Some(vec![]));
        assert_eq!(captures("gpt-4o", "gpt-4o-mini"), None);
        assert_eq!(captures("ab*ba", "aba"), None, "the ends may not overlap");
        assert_eq!(fill("*", &["gpt-4o"]), "gpt-4o");
        assert_eq!(fill("claude-*", &["3-5-haiku"]), "claude-3-5-haiku");
        assert_eq!(fill("a*-x-*", &["1", "2"]), "a1-x-2");
        assert_eq!(fill("fixed", &["x"]), "fixed");
    }

    #[test]
    fn the_more_specific_pattern_first() {
        let names: Vec<String> = ["*", "gpt-4o", "anthropic/*", "anthropic/claude-*"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            by_specificity(names.iter()),
            ["anthropic/claude-*", "anthropic/*", "*"]
        );
    }
}
