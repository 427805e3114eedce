package asuser

// User is whose file-system credentials a call runs with.
type User struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups; none is a valid answer
}
