//! The APIs clients speak besides OpenAI's, bridged to and from the OpenAI chat format the
//! translators take (issue 10): Anthropic's Messages API.

pub mod anthropic;
