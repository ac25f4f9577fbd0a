// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice The sender hook of an ERC-777-style token (IERC777Sender's `tokensToSend`).
interface ITokensSender {
    /// @notice Called before `amount` of the holder's tokens move, by the token contract.
    /// @param operator Who moves them (the spender of a `transferFrom`).
    /// @param from The holder.
    /// @param to The recipient.
    /// @param amount The amount.
    function tokensToSend(address operator, address from, address to, uint256 amount) external;
}

/// @title CallbackToken
/// @notice Test ERC-20 that, like ERC-777, calls the holder's registered sender hook before any
/// of the holder's tokens move, so a holder contract runs code in the middle of the market's
/// `transferFrom`. Hooks do not nest: a transfer made from inside a hook calls no hook.
contract CallbackToken is ERC20 {
    mapping(address holder => address hook) private _senderHooks;
    bool private _inHook;

    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Mint `amount` to `to`. Anyone may call it: this is a test token.
    /// @param to The recipient.
    /// @param amount The amount.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Register the caller's sender hook (ERC-1820's role in ERC-777); zero removes it.
    /// @param hook The contract whose `tokensToSend` runs before the caller's tokens move.
    function setSenderHook(address hook) external {
        _senderHooks[msg.sender] = hook;
    }

    /// @dev Runs the sender's hook, then moves the tokens; a reverting hook reverts the transfer.
    function _update(address from, address to, uint256 value) internal override {
        address hook = _senderHooks[from];
        if (hook != address(0) && !_inHook) {
            _inHook = true;
            ITokensSender(hook).tokensToSend(msg.sender, from, to, value);
            _inHook = false;
        }
        super._update(from, to, value);
    }
}
