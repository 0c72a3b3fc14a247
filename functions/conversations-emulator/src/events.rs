//! What happens in the service, told to the browser API's event streams: a message added,
//! someone typing, a participant joined or left. Each stream hears only what happens in the
//! conversations its identity is in, and hears when its own membership ends.

use crate::Emulator;
use crate::state::MessageRec;

/// Events a slow stream may fall behind by before it is told to fetch again (`resync`).
pub const BUFFERED: usize = 1024;

#[derive(Debug, Clone)]
pub enum Event {
    MessageAdded {
        conversation: String,
        message: MessageRec,
    },
    Typing {
        conversation: String,
        identity: String,
    },
    Joined {
        conversation: String,
        identity: String,
    },
    Left {
        conversation: String,
        identity: String,
    },
    MessageRemoved {
        conversation: String,
        index: u64,
    },
}

impl Event {
    /// The conversation (`CH…`) it happened in.
    pub fn conversation_sid(&self) -> &str {
        match self {
            Event::MessageAdded { conversation, .. }
            | Event::Typing { conversation, .. }
            | Event::Joined { conversation, .. }
            | Event::Left { conversation, .. }
            | Event::MessageRemoved { conversation, .. } => conversation,
        }
    }
}

impl Emulator {
    /// Tells the streams; nobody listening is fine.
    pub(crate) fn tell(&self, event: Event) {
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Messages and participants change in the conversation itself: a conversation with a
    /// participant added or removed tells it.
    pub(crate) fn membership_changed(&self, conversation: &str, identity: &str, joined: bool) {
        let (conversation, identity) = (conversation.to_owned(), identity.to_owned());
        self.tell(match joined {
            true => Event::Joined {
                conversation,
                identity,
            },
            false => Event::Left {
                conversation,
                identity,
            },
        });
    }
}
