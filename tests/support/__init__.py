"""What every test suite shares: ports and polling (`procs`), a private anvil node (`anvil`)."""
