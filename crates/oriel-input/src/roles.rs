//! Roles and what each may send. Enforcement happens where input is
//! injected, from the role the server derived from the client's token.

use crate::protocol::InputMessage;

/// The first gamepad slot, owned by the controller.
pub const CONTROLLER_SLOT: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Keyboard, mouse and gamepad 1. At most one connected at a time.
    Controller,
    /// Watches only.
    Viewer,
    /// Owns one gamepad slot, 2..=N.
    Player { slot: u8 },
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Controller => "controller",
            Role::Viewer => "viewer",
            Role::Player { .. } => "player",
        }
    }

    /// The gamepad slot this role drives, if any.
    pub fn gamepad_slot(self) -> Option<u8> {
        match self {
            Role::Controller => Some(CONTROLLER_SLOT),
            Role::Viewer => None,
            Role::Player { slot } => Some(slot),
        }
    }
}

/// Why an input message was not injected; the label of its drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Denied {
    /// Viewers send nothing.
    Viewer,
    /// Players drive only their gamepad.
    PlayerNotGamepad,
}

impl Denied {
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::Viewer => "viewer",
            Denied::PlayerNotGamepad => "player_not_gamepad",
        }
    }
}

/// Which kind of device a message drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Keyboard,
    Pointer,
    Gamepad,
    /// Release-all touches whatever the client holds, which is already
    /// limited to what it was allowed to press.
    Own,
}

pub fn target(m: &InputMessage) -> Target {
    use InputMessage::*;
    match m {
        KeyDown(_) | KeyUp(_) | Text(_) => Target::Keyboard,
        PointerAbs { .. } | PointerRel { .. } | ButtonDown(_) | ButtonUp(_) | Wheel { .. } => {
            Target::Pointer
        }
        GamepadConnect | GamepadDisconnect | GamepadButton { .. } | GamepadAxis { .. } => {
            Target::Gamepad
        }
        ReleaseAll => Target::Own,
    }
}

/// The role-to-allowed-input matrix.
pub fn allowed(role: Role, m: &InputMessage) -> Result<(), Denied> {
    match (role, target(m)) {
        (Role::Viewer, _) => Err(Denied::Viewer),
        (Role::Controller, _) => Ok(()),
        (Role::Player { .. }, Target::Gamepad | Target::Own) => Ok(()),
        (Role::Player { .. }, _) => Err(Denied::PlayerNotGamepad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MouseButton;

    fn every_kind() -> Vec<InputMessage> {
        use InputMessage::*;
        vec![
            KeyDown("KeyA".into()),
            KeyUp("KeyA".into()),
            Text("x".into()),
            PointerAbs { x: 1, y: 1 },
            PointerRel { dx: 1, dy: 1 },
            ButtonDown(MouseButton::Left),
            ButtonUp(MouseButton::Left),
            Wheel { dx: 0, dy: 120 },
            GamepadConnect,
            GamepadDisconnect,
            GamepadButton { index: 0, value: 1 },
            GamepadAxis { index: 0, value: 1 },
            ReleaseAll,
        ]
    }

    #[test]
    fn matrix() {
        for m in every_kind() {
            assert_eq!(allowed(Role::Controller, &m), Ok(()), "{m:?}");
            assert_eq!(allowed(Role::Viewer, &m), Err(Denied::Viewer), "{m:?}");
            let player = allowed(Role::Player { slot: 2 }, &m);
            match target(&m) {
                Target::Gamepad | Target::Own => assert_eq!(player, Ok(()), "{m:?}"),
                _ => assert_eq!(player, Err(Denied::PlayerNotGamepad), "{m:?}"),
            }
        }
    }

    #[test]
    fn slots() {
        assert_eq!(Role::Controller.gamepad_slot(), Some(1));
        assert_eq!(Role::Player { slot: 3 }.gamepad_slot(), Some(3));
        assert_eq!(Role::Viewer.gamepad_slot(), None);
    }
}
