-- One row per prefix: the store's forget mark (`SharedStore::forget_mark`),
-- a random value written at first use. Read with the row's `xmin` and the
-- server's start time, it changes when the database may have forgotten
-- writes: the table emptied or restored from a dump (the row is missing,
-- or written anew), a restart, a failover to a standby, a point-in-time
-- recovery (another start time).
CREATE TABLE IF NOT EXISTS payauth_forget_marks (
    prefix text PRIMARY KEY,
    mark   text NOT NULL
);
