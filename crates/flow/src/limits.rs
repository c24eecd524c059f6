//! WhatsApp's limits on interactive messages and text, checked at load time so a flow that
//! validates is never refused by the Cloud API for its shape (error 100).

/// Characters in a text message body.
pub const TEXT: usize = 4096;
/// Characters in the body of a message with buttons or a list.
pub const INTERACTIVE_BODY: usize = 1024;
/// Reply buttons in one message.
pub const BUTTONS: usize = 3;
/// Characters in a button title.
pub const BUTTON_TITLE: usize = 20;
/// Rows in a list, all sections together.
pub const LIST_ROWS: usize = 10;
/// Characters in a list row title.
pub const ROW_TITLE: usize = 24;
/// Characters in a list row description.
pub const ROW_DESCRIPTION: usize = 72;
/// Characters in the button that opens a list.
pub const LIST_BUTTON: usize = 20;
/// Characters in a button or row id.
pub const CHOICE_ID: usize = 256;
