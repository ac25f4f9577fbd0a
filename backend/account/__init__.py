"""The signed-in user's own records across domains: profile and roles, orders, access,
certificates (`/auth/me`, `/me/...`)."""
