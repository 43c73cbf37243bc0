//! The APIs clients speak besides OpenAI's chat completions, bridged to and from the chat
//! format the translators take (issue 10): Anthropic's Messages API and OpenAI's Responses
//! API. Each file has the same shape: request → chat request, chat answer → answer, chat
//! chunks → the API's event sequence, error → the API's error.

pub mod anthropic;
pub mod responses;
