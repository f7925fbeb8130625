package media

// MP4Type is how a derived MP4 (a remuxed recording, a session MP4) is stored.
var MP4Type = Type{Recording, "video/mp4", immutable}

// PosterType is how a poster JPEG is stored.
var PosterType = Type{Recording, "image/jpeg", immutable}
