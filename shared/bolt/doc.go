// Package bolt is a forgelink.Store kept in one bbolt file, for the
// one-process server behind make run and for tests.
//
//	s, err := bolt.Open("forgelink.db")
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	p, err := s.GetProjectByHookID(ctx, hookID)
//
// A bbolt file can be open in one process at a time; Open waits up to a
// second for another process's lock and then fails.
package bolt
