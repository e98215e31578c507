//! What the API serves: the running switch and the control-plane state around it.

use switch::Switch;

/// The switch and its control-plane companions, shared by every request.
pub struct App {
    /// The running switch.
    pub switch: Switch,
}

impl App {
    /// Wraps a started switch.
    pub fn new(switch: Switch) -> App {
        App { switch }
    }
}
