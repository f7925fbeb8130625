package storage

import "time"

// Listed is one object of a bucket listing: its key (without the storage prefix), size and
// last modification.
type Listed struct {
	Key      string    `json:"key"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"time"`
}
