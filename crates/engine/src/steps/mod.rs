//! Step kinds whose work is more than a line of the turn: validating answers (`ask`), building
//! and interpreting HTTP calls (`api_request`), and Zoho searches (`zoho_search`).

pub mod api_request;
pub mod ask;
pub mod zoho_search;
