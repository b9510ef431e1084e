-- Inserted parts stay Compact (all columns in one data file) up to 32 MiB of uncompressed
-- data, about 90,000 events: a store batch (store.batch_rows, 50,000 by default, about 18 MiB)
-- becomes a part of about 25 files instead of a Wide part of about 180 (two per column and
-- per skip index). Creating those files was a large share of an insert's cost on a local disk
-- (kernel time in inode allocation; see bench/store and src/store/README.md). Parts that
-- merges make past the threshold are Wide as before, so searches over months read Wide parts.
ALTER TABLE {db}.{t:mail_events} {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 33554432;
