// Package objkey owns the object key templates of the config (keys.hls, keys.playlist, keys.dvr,
// playlist.vod_key, warm.folder): their syntax ({app}/{stream}/{basename}…), the variables a
// hook or a found file gives them, and how a template turns into the key of an object.
package objkey
