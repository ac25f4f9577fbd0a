// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ReentrantPayee
/// @notice Test attacker: forwards calls to a target, and when it receives the native coin it
/// calls the target again with preset calldata (re-entering `withdraw`, `refund`, `purchase`).
/// The re-entry's outcome is recorded; the received coin is accepted either way, so a test can
/// tell "re-entry blocked" from "payment refused".
contract ReentrantPayee {
    address private _target;
    bytes private _reentryData;
    uint256 private _reentryValue;

    /// @notice Whether the last re-entry attempt succeeded.
    bool public lastReentrySucceeded;
    /// @notice The revert data of the last failed re-entry.
    bytes public lastReentryError;
    /// @notice How many re-entries were attempted.
    uint256 public reentryAttempts;

    /// @notice A re-entry was attempted from `receive`.
    /// @param succeeded Whether the re-entrant call succeeded.
    event ReentryAttempted(bool succeeded);

    /// @notice Set what `receive` calls; empty `data` disables re-entry.
    /// @param target The contract to re-enter.
    /// @param data The calldata of the re-entrant call.
    /// @param value The native coin to send with it (from this contract's balance).
    function setReentry(address target, bytes calldata data, uint256 value) external {
        _target = target;
        _reentryData = data;
        _reentryValue = value;
    }

    /// @notice Call `target` with `data` and `msg.value`, bubbling up a revert.
    /// @param target The contract to call.
    /// @param data The calldata.
    /// @return result The call's return data.
    function execute(address target, bytes calldata data)
        external
        payable
        returns (bytes memory result)
    {
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    /// @notice Accepts the coin and attempts the preset re-entry once per receipt.
    receive() external payable {
        _reenter();
    }

    /// @notice ERC-777-style sender hook (see CallbackToken): attempts the preset re-entry
    /// before this contract's tokens move, in the middle of the spender's `transferFrom`.
    function tokensToSend(address, address, address, uint256) external {
        _reenter();
    }

    /// @dev Calls the target with the preset calldata, recording the outcome without reverting.
    function _reenter() private {
        if (_reentryData.length == 0) return;
        ++reentryAttempts;
        (bool ok, bytes memory err) = _target.call{value: _reentryValue}(_reentryData);
        lastReentrySucceeded = ok;
        lastReentryError = err;
        emit ReentryAttempted(ok);
    }
}
