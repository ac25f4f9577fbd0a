// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title RejectingPayee
/// @notice Test account that refuses the native coin, and otherwise forwards any call: used to
/// show that a payee that cannot receive only blocks its own withdrawal.
contract RejectingPayee {
    /// @notice The native coin was refused.
    error Rejected();

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

    /// @notice Always reverts.
    receive() external payable {
        revert Rejected();
    }
}
