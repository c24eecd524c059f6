//! Driving a turn to its end with an [`EffectHandler`]: the loop every driver (server, chat,
//! replay) would otherwise write again.

use std::future::Future;

use crate::effect::{Effect, EffectResult};
use crate::turn::{Poll, Turn, TurnResult};

/// Performs effects: real HTTP and Zoho in production, fakes in replays.
pub trait EffectHandler {
    fn handle(&self, effect: Effect) -> impl Future<Output = EffectResult> + Send;
}

/// Runs the turn until it is done, performing each effect with `handler`.
pub async fn drive<H: EffectHandler>(mut turn: Turn, handler: &H) -> TurnResult {
    loop {
        match turn.poll() {
            Poll::Effect(effect) => {
                let result = handler.handle(effect).await;
                turn.resume(result);
            }
            Poll::Done => return turn.finish(),
        }
    }
}
