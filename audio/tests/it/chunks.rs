use beatstream_audio::{CHUNK_MIME_TYPE, Chunker, Limits, decode_chunk, demo};

use crate::{FIXTURES, decode_all, fixture, temp_file};

#[test]
fn chunks_are_whole_seconds_and_put_back_together_are_the_track_exactly() {
    for f in &FIXTURES {
        let path = fixture(f.name);
        let mut chunker = Chunker::open(&path, &Limits::default()).unwrap();
        let mut joined = Vec::new();
        let mut count = 0u32;
        for (i, chunk) in chunker.by_ref().enumerate() {
            let chunk = chunk.unwrap();
            assert_eq!(chunk.index as usize, i);
            let pcm = decode_chunk(&chunk.bytes).unwrap();
            assert_eq!((pcm.sample_rate, pcm.channels), (f.sample_rate, f.channels), "{}", f.name);
            assert_eq!(pcm.frames(), chunk.frames as usize);
            joined.extend_from_slice(&pcm.samples);
            count += 1;
        }
        let info = chunker.info().expect("the chunker ended cleanly");
        assert_eq!(count, info.chunk_count(), "{}", f.name);
        assert_eq!(u64::from(count), f.frames.div_ceil(u64::from(f.sample_rate)), "{}", f.name);
        assert_eq!(
            joined,
            decode_all(&path),
            "{}: chunks must be the decoded track, bit for bit",
            f.name
        );
        assert_eq!(CHUNK_MIME_TYPE, "audio/flac");
    }
}

#[test]
fn every_chunk_but_the_last_is_exactly_one_second() {
    let frames: Vec<u32> = Chunker::open(&fixture("tone.opus"), &Limits::default())
        .unwrap()
        .map(|c| c.unwrap().frames)
        .collect();
    assert_eq!(frames, [48_000, 48_000, 33_600]);
    let frames: Vec<u32> = Chunker::open(&fixture("tone.mp3"), &Limits::default())
        .unwrap()
        .map(|c| c.unwrap().frames)
        .collect();
    assert_eq!(frames, [44_100, 44_100, 13_230]);
}

#[test]
fn a_track_of_whole_seconds_has_no_empty_last_chunk() {
    let (_dir, path) = temp_file("demo.wav", &demo::track(3, 4));
    let frames: Vec<u32> =
        Chunker::open(&path, &Limits::default()).unwrap().map(|c| c.unwrap().frames).collect();
    assert_eq!(frames, [44_100; 4]);
}

#[test]
fn a_long_track_streams_through() {
    // Two minutes of demo audio, cut chunk by chunk: the chunker never holds more than a chunk and a packet,
    // so this is about correctness over many chunks rather than a memory measurement.
    let (_dir, path) = temp_file("long.wav", &demo::track(11, 120));
    let source = demo::pcm(11, 120);
    let mut offset = 0;
    for chunk in Chunker::open(&path, &Limits::default()).unwrap() {
        let pcm = decode_chunk(&chunk.unwrap().bytes).unwrap();
        assert_eq!(pcm.samples, source[offset..offset + pcm.samples.len()]);
        offset += pcm.samples.len();
    }
    assert_eq!(offset, source.len());
}
