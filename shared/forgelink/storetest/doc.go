// Package storetest is the contract suite that every forgelink.Store
// implementation runs, so the bbolt and DynamoDB stores behave alike.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) forgelink.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "forgelink.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// newStore must return an empty store each time it is called; Run calls it
// once per subtest.
//
// Beyond what the forgelink.Store comments say, Run requires: Invalid for a
// project without a hook id, for an update that changes the hook id, and
// for a delivery without a hook id, an id or an ExpiresAt; NotFound from
// SetDeliveryState on an expired delivery; times kept to the millisecond
// (the instant, not the location); and no aliasing of the caller's slices.
// Nil and empty slices may come back either way.
//
// RunKeys, RunPipelines and RunStatus run the contracts of
// forgelink.KeyStore, forgelink.PipelineStore and forgelink.StatusStore the
// same way. Beyond their comments, RunStatus requires Invalid for a posted
// status without a valid project, a revision or a context, and NotFound
// from UpdatePipelineStatus for an unknown (or empty) pipeline id.
package storetest
