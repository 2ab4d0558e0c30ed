//! Unit tests of the PostgreSQL sink that need no server.
