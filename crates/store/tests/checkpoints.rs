//! WAL checkpoints run beside the writer: under writes that never pause, the WAL file must still
//! start over instead of growing for as long as the load lasts (the first version of the
//! checkpoint thread let it reach 437 MB in a 10,000-message benchmark).

mod common;

use common::{at, inbound, open_store, turn};
use flowbot_store::InsertOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_writes_that_never_pause() {
    let db = open_store().await;
    let wal = {
        let mut name = db.path.clone().into_os_string();
        name.push("-wal");
        std::path::PathBuf::from(name)
    };
    // 32 writers committing turns back to back: the writer thread never waits for work.
    let writers: Vec<_> = (0..32)
        .map(|writer| {
            let store = db.store.clone();
            tokio::spawn(async move {
                for n in 0..300 {
                    let phone = format!("9198{writer:04}{n:04}");
                    let message = inbound(&format!("wamid.{writer}.{n}"), &phone, "hi", at(0));
                    let outcomes = store.insert_inbound(vec![message]).await.expect("insert");
                    let [InsertOutcome::Inserted(inbox_id)] = outcomes[..] else {
                        panic!("not inserted: {outcomes:?}");
                    };
                    store
                        .commit_turn(turn(inbox_id, &phone, &["a reply"], at(1)))
                        .await
                        .expect("commit");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let database = std::fs::metadata(&db.path).expect("database file").len();
    // The WAL file is reused from its start after a restart, so its size is its high-water mark.
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    println!("database {database} bytes, WAL high-water mark {wal_bytes} bytes");
    // 9,600 messages and turns write about 230 MiB of WAL frames in all (228 MiB of WAL when the
    // writer never finishes a checkpoint itself); it does after each background checkpoint.
    assert!(
        wal_bytes < 64 * 1024 * 1024,
        "the WAL grew to {wal_bytes} bytes"
    );
    assert!(database > 0);
}
