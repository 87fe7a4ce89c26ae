package com.s3bguploader.core.test

import com.s3bguploader.core.ErrorCode
import com.s3bguploader.core.FileOpenException
import com.s3bguploader.core.FileOpener
import com.s3bguploader.core.FileRoot
import com.s3bguploader.core.OpenedFile
import com.s3bguploader.core.HandoffSettings
import com.s3bguploader.core.PartMode
import com.s3bguploader.core.PartTask
import com.s3bguploader.core.PartTaskResult
import com.s3bguploader.core.PartTransport
import com.s3bguploader.core.SubmitException
import com.s3bguploader.core.IdleReason
import com.s3bguploader.core.NetworkPolicy
import com.s3bguploader.core.NewFile
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.UploadObserver
import com.s3bguploader.core.UploadRecord
import com.s3bguploader.core.UploadSelector
import com.s3bguploader.core.UploadState
import com.s3bguploader.core.UploaderConfig
import com.s3bguploader.core.UploaderEvent
import com.s3bguploader.core.UploaderException
import com.s3bguploader.core.AggregateState
import com.s3bguploader.core.bookmarkData
import com.s3bguploader.core.bookmarkFileName
import com.s3bguploader.core.bookmarkUri
import com.s3bguploader.core.configForBaseUrl
import com.s3bguploader.core.hashFile
import com.s3bguploader.core.renderNotification
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.AfterClass
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.BeforeClass
import org.junit.Test
import java.io.File
import java.net.HttpURLConnection
import java.net.URI
import java.util.concurrent.Executors
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.TimeUnit
import kotlin.random.Random

private const val MIB = 1024 * 1024

/** `s3bgu serve` with its embedded S3 store, on an ephemeral loopback port. */
object ReferenceBackend {
    lateinit var url: String
    lateinit var storeDir: File
    private var process: Process? = null

    fun start() {
        val cli = System.getProperty("s3bgu.cli") ?: error("-Ds3bgu.cli is not set")
        storeDir = Files.createTempDirectory("s3bgu-store").toFile()
        val p = ProcessBuilder(
            cli, "serve", "--listen", "127.0.0.1:0",
            "--store", storeDir.path, "--part-size", (5 * MIB).toString(),
        ).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        process = p
        Runtime.getRuntime().addShutdownHook(Thread { p.destroyForcibly() })
        val first = p.inputStream.bufferedReader().readLine()
            ?: error("s3bgu serve exited: ${p.waitFor()}")
        check(first.startsWith("listening on ")) { "unexpected first line: $first" }
        url = first.removePrefix("listening on ").trim()
    }

    fun stop() {
        process?.let { it.destroy(); it.waitFor(5, TimeUnit.SECONDS); it.destroyForcibly() }
        storeDir.deleteRecursively()
    }

    /** The completed object's bytes, as the embedded store keeps them. */
    fun objectBytes(key: String): ByteArray = File(storeDir, "uploads/$key").readBytes()
}

/** Records every event, in the order the engine delivered them. */
class Recorder : UploadObserver {
    val events: MutableList<UploaderEvent> = Collections.synchronizedList(ArrayList())
    override fun onEvent(event: UploaderEvent) {
        events.add(event)
    }

    fun snapshot(): List<UploaderEvent> = synchronized(events) { events.toList() }

    fun statesOf(id: Long): List<UploadState> = snapshot().mapNotNull {
        (it as? UploaderEvent.StateChanged)?.upload?.takeIf { u -> u.id == id }?.state
    }
}

/** libc through JNA: real descriptors, as Android's `detachFd()` hands them over. */
interface LibC : com.sun.jna.Library {
    fun open(path: String, flags: Int): Int
    fun pipe(fds: IntArray): Int
    fun close(fd: Int): Int

    companion object {
        val INSTANCE: LibC = com.sun.jna.Native.load("c", LibC::class.java)
        const val O_RDONLY = 0
    }
}

/** Opens `content://kotlin-test/<name>` as `<dir>/<name>`, or fails as told per name. */
class DirectoryOpener(private val dir: File) : FileOpener {
    enum class Fault { REVOKED, GONE, THROWS, PIPE }

    val faults: MutableMap<String, Fault> = java.util.concurrent.ConcurrentHashMap()
    val calls: MutableMap<String, Int> = java.util.concurrent.ConcurrentHashMap()

    override fun openFile(uri: String): OpenedFile = OpenedFile(openFd(uri), null)

    private fun openFd(uri: String): Int {
        val name = uri.removePrefix(PREFIX)
        calls.merge(name, 1, Int::plus)
        return when (faults[name]) {
            Fault.REVOKED -> throw FileOpenException.PermissionRevoked("the grant for $name was revoked")
            Fault.GONE -> throw FileOpenException.Gone("$name was deleted")
            Fault.THROWS -> throw IllegalStateException("a bug in the opener")
            Fault.PIPE -> {
                val fds = IntArray(2)
                check(LibC.INSTANCE.pipe(fds) == 0)
                LibC.INSTANCE.close(fds[1])
                fds[0]
            }
            null -> {
                val f = File(dir, name)
                if (!f.exists()) throw FileOpenException.Gone("$name does not exist")
                LibC.INSTANCE.open(f.path, LibC.O_RDONLY).also { check(it >= 0) { "open($f) failed" } }
            }
        }
    }

    companion object {
        const val PREFIX = "content://kotlin-test/"
        fun uri(name: String) = PREFIX + name
    }
}

class UploadEngineTest {
    companion object {
        @BeforeClass @JvmStatic fun startBackend() = ReferenceBackend.start()

        @AfterClass @JvmStatic fun stopBackend() = ReferenceBackend.stop()
    }

    private val dir: File = Files.createTempDirectory("s3bgu-kotlin").toFile().also { it.deleteOnExit() }

    private fun file(name: String, size: Int, seed: Int = name.hashCode()): File =
        File(dir, name).also { it.writeBytes(Random(seed).nextBytes(size)) }

    private fun config(): UploaderConfig =
        configForBaseUrl(ReferenceBackend.url).apply { maxPartsInFlight = 3u }

    private fun open(name: String = "queue.db", start: Boolean = true): UploadEngine =
        UploadEngine.open(File(dir, name).path, start)

    private fun assertStoredObject(u: UploadRecord, f: File) {
        val key = checkNotNull(u.key) { "key of ${u.fileName}" }
        assertArrayEquals("object $key equals ${f.name}", f.readBytes(), ReferenceBackend.objectBytes(key))
    }

    private suspend fun UploadEngine.one(id: Long): UploadRecord = uploads(UploadSelector.Upload(id)).single()

    private inline fun <reified T : Throwable> assertThrows(block: () -> Unit): T {
        try {
            block()
        } catch (e: Throwable) {
            if (e is T) return e
            throw AssertionError("expected ${T::class.simpleName}, got $e", e)
        }
        fail("expected ${T::class.simpleName}, nothing was thrown")
        throw IllegalStateException()
    }

    @Test
    fun multiFileUploadCompletesWithByteIdenticalObjects() = runBlocking<Unit> {
        open().use { engine ->
            engine.setConfig(config())
            val files = listOf(file("empty.bin", 0), file("one.bin", 1), file("two-parts.bin", 5 * MIB + 7), file("three.bin", 11 * MIB))
            val added = files.map { engine.addFile(NewFile(it.path, "album", null, """{"album":"summer"}""")) }
            assertEquals(hashFile(files[2].path), added[2].fileHash)
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            for ((u, f) in added.zip(files)) {
                val done = engine.one(u.id)
                assertEquals(UploadState.COMPLETED, done.state)
                assertEquals(f.length().toULong(), done.uploadedBytes)
                assertStoredObject(done, f)
            }
            assertEquals(3u, engine.one(added[3].id).partsTotal)
            val s = engine.summary("album")
            assertEquals(AggregateState.COMPLETED, s.state)
            assertEquals(4u, s.files)
            assertEquals(4u, s.completedFiles)
            assertEquals(s.totalBytes, s.uploadedBytes)
            assertEquals(listOf("album"), engine.transferSummaries().map { it.transferId })
            assertEquals(0uL, engine.bytesRemaining())
        }
    }

    @Test
    fun observerGetsTheSnapshotThenProgressAndEveryStateInOrder() = runBlocking<Unit> {
        open().use { engine ->
            engine.setConfig(config())
            val first = engine.addFile(NewFile(file("before.bin", 10).path, "t", null, "{}"))
            engine.runUntilIdle()

            val rec = Recorder()
            val sub = engine.subscribe(rec)
            val f = file("watched.bin", 11 * MIB)
            val u = engine.addFile(NewFile(f.path, "t", "renamed.bin", "{}"))
            assertEquals("renamed.bin", u.fileName)
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            sub.close()

            val events = rec.snapshot()
            val snap = events.first() as UploaderEvent.Snapshot
            assertEquals(listOf(first.id), snap.uploads.map { it.id })
            assertEquals(UploadState.COMPLETED, snap.uploads.single().state)
            assertEquals(1u, snap.summary.completedFiles)
            assertEquals(1, events.count { it is UploaderEvent.Snapshot })
            assertEquals(
                listOf(UploadState.PENDING, UploadState.INITIALIZED, UploadState.RUNNING, UploadState.COMPLETED),
                rec.statesOf(u.id),
            )
            val progress = events.mapNotNull { (it as? UploaderEvent.Progress)?.progress?.takeIf { p -> p.id == u.id } }
            assertTrue("progress events arrived", progress.isNotEmpty())
            assertEquals(f.length().toULong(), progress.last().uploadedBytes)
            assertEquals(3u, progress.last().partsDone)
            // Progress comes between RUNNING and COMPLETED.
            val running = events.indexOfFirst { it is UploaderEvent.StateChanged && it.upload.id == u.id && it.upload.state == UploadState.RUNNING }
            val completed = events.indexOfFirst { it is UploaderEvent.StateChanged && it.upload.id == u.id && it.upload.state == UploadState.COMPLETED }
            val progressAt = events.indices.filter { (events[it] as? UploaderEvent.Progress)?.progress?.id == u.id }
            assertTrue("progress after RUNNING, before COMPLETED", progressAt.all { it in (running + 1) until completed })
        }
    }

    @Test
    fun aThrowingObserverNeitherStopsTheEngineNorOtherObservers() = runBlocking<Unit> {
        open().use { engine ->
            engine.setConfig(config())
            val broken = object : UploadObserver {
                override fun onEvent(event: UploaderEvent) = throw IllegalStateException("observer bug")
            }
            val good = Recorder()
            engine.subscribe(broken).use {
                engine.subscribe(good).use {
                    val f = file("robust.bin", 5 * MIB + 3)
                    val u = engine.addFile(NewFile(f.path, "t", null, "{}"))
                    assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
                    assertEquals(
                        listOf(UploadState.PENDING, UploadState.INITIALIZED, UploadState.RUNNING, UploadState.COMPLETED),
                        good.statesOf(u.id),
                    )
                    assertStoredObject(engine.one(u.id), f)
                }
            }
        }
    }

    @Test
    fun pauseResumeAndCancelByUploadAndByTransfer() = runBlocking<Unit> {
        open(start = false).use { engine ->
            engine.setConfig(config())
            val a1 = engine.addFile(NewFile(file("a1.bin", 1000).path, "a", null, "{}"))
            val a2 = engine.addFile(NewFile(file("a2.bin", 2000).path, "a", null, "{}"))
            val b1 = engine.addFile(NewFile(file("b1.bin", 3000).path, "b", null, "{}"))
            val c1 = engine.addFile(NewFile(file("c1.bin", 4000).path, "c", null, "{}"))

            assertEquals(listOf(a1.id), engine.pause(UploadSelector.Upload(a1.id)).map { it.id })
            assertEquals(UploadState.PAUSED, engine.one(a1.id).state)
            assertEquals(listOf(b1.id), engine.pause(UploadSelector.Transfer("b")).map { it.id })
            assertEquals(listOf(c1.id), engine.cancel(UploadSelector.Transfer("c")).map { it.id })
            assertEquals(UploadState.CANCELLED, engine.one(c1.id).state)
            assertEquals(AggregateState.CANCELLED, engine.summary("c").state)

            // Only a2 may run; a1 and b1 stay paused.
            assertEquals(IdleReason.ALL_PAUSED, withTimeout(60_000) { engine.runUntilIdle() })
            assertEquals(UploadState.COMPLETED, engine.one(a2.id).state)
            assertEquals(UploadState.PAUSED, engine.one(a1.id).state)
            assertEquals(AggregateState.PAUSED, engine.summary("b").state)

            assertEquals(listOf(a1.id), engine.resume(UploadSelector.Upload(a1.id)).map { it.id })
            engine.cancel(UploadSelector.Upload(a1.id))
            assertEquals(UploadState.CANCELLED, engine.one(a1.id).state)
            assertEquals(listOf(b1.id), engine.resume(UploadSelector.Transfer("b")).map { it.id })
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            val b = engine.one(b1.id)
            assertEquals(UploadState.COMPLETED, b.state)
            assertStoredObject(b, File(b.path))
            // Cancelled stays cancelled; pausing or resuming it changes nothing.
            assertTrue(engine.resume(UploadSelector.All).isEmpty())
            assertTrue(engine.pause(UploadSelector.All).isEmpty())
            assertEquals(UploadState.CANCELLED, engine.one(c1.id).state)
        }
    }

    @Test
    fun forgetDeletesFinishedUploadsAndRefusesUnfinishedOnes() = runBlocking<Unit> {
        open("forget.db").use { engine ->
            assertEquals(604_800_000uL, config().finishedRetentionMs)
            engine.setConfig(config().apply { finishedRetentionMs = 0uL })
            val done = engine.addFile(NewFile(file("f-done.bin", 1000).path, "f", null, "{}"))
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            // Suspended first: a 2,000-byte upload could complete before the pause.
            engine.suspend()
            val held = engine.addFile(NewFile(file("f-held.bin", 2000).path, "f", null, "{}"))
            engine.pause(UploadSelector.Upload(held.id))
            val refused = assertThrows<UploaderException.InvalidArgument> {
                runBlocking { engine.forget(UploadSelector.Upload(held.id)) }
            }
            assertTrue(refused.message!!.contains("PAUSED"))
            assertEquals(1uL, engine.forget(UploadSelector.Transfer("f")))
            assertEquals(listOf(held.id), engine.uploads(UploadSelector.All).map { it.id })
            assertTrue(engine.uploads(UploadSelector.Upload(done.id)).isEmpty())
        }
    }

    @Test
    fun errorsAreKotlinExceptionsCarryingTheStableCode() = runBlocking<Unit> {
        open().use { engine ->
            val noConfig = assertThrows<UploaderException.InvalidConfig> {
                runBlocking { engine.addFile(NewFile(file("x.bin", 5).path, "t", null, "{}")) }
            }
            assertTrue(noConfig.message!!.contains("setConfig"))
            assertThrows<UploaderException.InvalidConfig> {
                runBlocking { engine.setConfig(config().apply { completeUrl = "ftp://nowhere/complete" }) }
            }
            val badHeader = assertThrows<UploaderException.InvalidConfig> {
                runBlocking {
                    engine.setConfig(config().apply { headers = listOf(com.s3bguploader.core.HttpHeader("Authorization", "Bearer top-secret\n")) })
                }
            }
            assertFalse("header value leaked: ${badHeader.message}", badHeader.message!!.contains("top-secret"))
            engine.setConfig(config())
            assertTrue(engine.uploads(UploadSelector.Upload(987654)).isEmpty())
            val notFound = assertThrows<UploaderException.NotFound> { runBlocking { engine.pause(UploadSelector.Upload(987654)) } }
            assertTrue(notFound.message!!.contains("987654"))
            assertThrows<UploaderException.FileNotFound> {
                runBlocking { engine.addFile(NewFile(File(dir, "missing.bin").path, "t", null, "{}")) }
            }
            val reserved = assertThrows<UploaderException.InvalidArgument> {
                runBlocking {
                    engine.addFile(NewFile(file("y.bin", 5).path, "t", null, """{"token":"sup3r-s3cret","fileName":"z"}"""))
                }
            }
            assertFalse("user param leaked", reserved.message!!.contains("sup3r-s3cret"))
            assertThrows<UploaderException.InvalidArgument> {
                runBlocking { engine.addFile(NewFile(file("y.bin", 5).path, "t", null, """["not an object"]""")) }
            }
            assertThrows<UploaderException.InvalidArgument> {
                runBlocking { engine.addFile(NewFile(file("y.bin", 5).path, "", null, "{}")) }
            }

            // A failure of the upload itself is a record field with the same codes.
            engine.setConfig(config().apply { startUploadUrl = ReferenceBackend.url + "/no-such-route" })
            val u = engine.addFile(NewFile(file("rejected.bin", 10).path, "t", null, """{"secretParam":"hunter2-hunter2"}"""))
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            val failed = engine.one(u.id)
            assertEquals(UploadState.FAILED, failed.state)
            val error = checkNotNull(failed.error) { "error of a failed upload" }
            assertEquals(ErrorCode.BACKEND_REJECTED, error.code)
            assertEquals("backend_rejected", error.code.name.lowercase())
            assertFalse(error.message.contains("hunter2"))
            assertEquals(AggregateState.FAILED, engine.summary(null).state)

            engine.shutdown()
            assertThrows<UploaderException.Shutdown> { runBlocking { engine.summary(null) } }
            assertThrows<UploaderException.Shutdown> { engine.setNetworkState(true, false) }
        }
    }

    @Test
    fun runUntilIdleReturnsWhenDrainedAndSuspendStopsItWithinASecond() = runBlocking<Unit> {
        open(start = false).use { engine ->
            engine.setConfig(config())
            val f = file("drain.bin", 6 * MIB)
            val u = engine.addFile(NewFile(f.path, "t", null, "{}"))
            assertEquals(f.length().toULong(), engine.bytesRemaining())
            assertFalse(engine.status().running)
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            assertEquals(UploadState.COMPLETED, engine.one(u.id).state)
            assertEquals(0uL, engine.bytesRemaining())

            // A start call that keeps failing (nothing listens on port 1) and
            // waits seconds between retries: the run cannot end by itself.
            engine.setConfig(config().apply {
                startUploadUrl = "http://127.0.0.1:1/startUpload"
                retry = retry.copy(baseDelayMs = 20_000uL, maxDelayMs = 60_000uL)
            })
            val waiting = engine.addFile(NewFile(file("waiting.bin", 100).path, "t", null, "{}"))
            val run = async(Dispatchers.Default) { engine.runUntilIdle() }
            delay(500)
            assertFalse("the run is still going", run.isCompleted)
            val asked = System.nanoTime()
            engine.suspend()
            val reason = withTimeout(1_000) { run.await() }
            val ms = (System.nanoTime() - asked) / 1_000_000
            assertEquals(IdleReason.SUSPENDED, reason)
            assertTrue("suspend took $ms ms", ms < 1_000)
            assertEquals(UploadState.PENDING, engine.one(waiting.id).state)

            // Suspending with parts in flight: the next run finishes the file.
            engine.cancel(UploadSelector.Upload(waiting.id))
            engine.setConfig(config().apply { maxPartsInFlight = 1u })
            val big = file("big.bin", 30 * MIB)
            val b = engine.addFile(NewFile(big.path, "t", null, "{}"))
            val rec = Recorder()
            engine.subscribe(rec).use {
                val run2 = async(Dispatchers.Default) { engine.runUntilIdle() }
                withTimeout(30_000) {
                    while (rec.snapshot().none { it is UploaderEvent.Progress && it.progress.id == b.id }) delay(5)
                }
                val t0 = System.nanoTime()
                engine.suspend()
                val r2 = withTimeout(1_000) { run2.await() }
                assertTrue("suspend with parts in flight took too long", System.nanoTime() - t0 < 1_000_000_000L)
                // The file may just have finished; if not, it was held, not failed.
                val held = engine.one(b.id)
                if (r2 == IdleReason.SUSPENDED) {
                    assertTrue(held.state == UploadState.RUNNING || held.state == UploadState.COMPLETED)
                }
                assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            }
            val done = engine.one(b.id)
            assertEquals(UploadState.COMPLETED, done.state)
            assertStoredObject(done, big)
        }
    }

    @Test
    fun networkStateHoldsUploadsUntilAnAllowedNetwork() = runBlocking<Unit> {
        open(start = false).use { engine ->
            engine.setConfig(config().apply { networkPolicy = NetworkPolicy.UNMETERED_ONLY })
            engine.setNetworkState(false, false)
            val f = file("net.bin", 5 * MIB + 1)
            val u = engine.addFile(NewFile(f.path, "t", null, "{}"))
            assertEquals(IdleReason.WAITING_FOR_NETWORK, withTimeout(5_000) { engine.runUntilIdle() })
            engine.setNetworkState(true, true)
            val status = engine.status()
            assertTrue(status.online)
            assertTrue(status.metered)
            assertFalse(status.networkAllowed)
            assertEquals(IdleReason.WAITING_FOR_NETWORK, withTimeout(5_000) { engine.runUntilIdle() })
            assertEquals(UploadState.PENDING, engine.one(u.id).state)
            engine.setNetworkState(true, false)
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            assertStoredObject(engine.one(u.id), f)
        }
    }

    @Test
    fun eightCoroutinesCallingAtOnceDoNotDeadlock() = runBlocking<Unit> {
        open().use { engine ->
            engine.setConfig(config())
            val rec = Recorder()
            val sub = engine.subscribe(rec)
            val files = (0 until 8).map { file("c$it.bin", 64 * 1024 + it) }
            val ids = withTimeout(60_000) {
                files.mapIndexed { i, f ->
                    async(Dispatchers.Default) {
                        val u = engine.addFile(NewFile(f.path, "t${i % 3}", null, """{"n":$i}"""))
                        repeat(5) {
                            engine.uploads(UploadSelector.All)
                            engine.summary("t${i % 3}")
                            engine.transferSummaries()
                            engine.status()
                            engine.setNetworkState(true, false)
                            engine.pause(UploadSelector.Upload(u.id))
                            engine.resume(UploadSelector.Upload(u.id))
                            engine.config()
                        }
                        engine.subscribe(Recorder()).close()
                        u.id
                    }
                }.awaitAll()
            }
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            for ((id, f) in ids.zip(files)) {
                val u = engine.one(id)
                assertEquals(UploadState.COMPLETED, u.state)
                assertStoredObject(u, f)
            }
            assertEquals(8u, engine.summary(null).completedFiles)
            assertEquals(3u, engine.summary(null).completedTransfers)
            sub.close()
        }
    }

    @Test
    fun bookmarkUrisAreMadeAndReadInRust() {
        val data = byteArrayOf(0, 1, 2, -1, -17)
        val uri = bookmarkUri("clip:take 1.mov", data)
        assertTrue(uri, uri.startsWith("bookmark://local/"))
        assertArrayEquals(data, bookmarkData(uri))
        assertEquals("clip:take 1.mov", bookmarkFileName(uri))
        // As Platform.swift has written them: base64url, the `:` as is.
        assertArrayEquals(data, bookmarkData("bookmark://local/clip:take%201.mov?AAEC_-8"))
        assertEquals(null, bookmarkData("content://media/1?AAEC"))
        assertEquals(null, bookmarkFileName("content://media/1"))
    }

    @Test
    fun filesUnderARegisteredRootFollowItWhenItMoves() = runBlocking<Unit> {
        val before = File(dir, "container-a/files").also { it.mkdirs() }
        val f = File(before, "a.bin").also { it.writeBytes(Random(5).nextBytes(5 * MIB + 3)) }
        val bytes = f.readBytes()
        open("roots.db", start = false).use { engine ->
            engine.setConfig(config())
            assertThrows<UploaderException.InvalidArgument> {
                engine.setFileRoots(listOf(FileRoot("no spaces", before.path)))
            }
            assertThrows<UploaderException.InvalidArgument> {
                engine.setFileRoots(listOf(FileRoot("files", "relative/dir")))
            }
            engine.setFileRoots(listOf(FileRoot("files", before.path)))
            val u = engine.addFile(NewFile(f.path, "t", null, "{}"))
            assertEquals(f.path, u.path)
            // Without its root the upload shows as stored, and waits.
            engine.setFileRoots(emptyList())
            assertEquals("files/a.bin", engine.one(u.id).path)
            // The app was updated: the container moved.
            val after = File(dir, "container-b/files")
            check(File(dir, "container-a").renameTo(after.parentFile))
            engine.setFileRoots(listOf(FileRoot("files", after.path)))
            assertEquals(File(after, "a.bin").path, engine.one(u.id).path)
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            val done = engine.one(u.id)
            assertEquals(done.error?.message, UploadState.COMPLETED, done.state)
            assertArrayEquals(bytes, ReferenceBackend.objectBytes(checkNotNull(done.key)))
        }
    }

    @Test
    fun contentUrisOpenedByAKotlinOpenerUploadByteIdentical() = runBlocking<Unit> {
        val opener = DirectoryOpener(dir)
        val files = listOf(file("video.mp4", 11 * MIB + 3), file("photo.jpg", 70_000))
        for (f in files) {
            assertEquals(hashFile(f.path), hashFile(DirectoryOpener.uri(f.name), opener))
        }
        assertThrows<UploaderException.InvalidConfig> { hashFile(DirectoryOpener.uri("photo.jpg")) }
        open("uris.db", start = false).use { engine ->
            engine.setConfig(config())
            assertThrows<UploaderException.InvalidConfig> {
                runBlocking { engine.addFile(NewFile(DirectoryOpener.uri("photo.jpg"), "t", null, "{}")) }
            }
            engine.setFileOpener(opener)
            val added = files.map { engine.addFile(NewFile(DirectoryOpener.uri(it.name), "phone", null, "{}")) }
            assertEquals(DirectoryOpener.uri("video.mp4"), added[0].path)
            assertEquals("video.mp4", added[0].fileName)
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            assertEquals(3u, engine.one(added[0].id).partsTotal)
            for ((u, f) in added.zip(files)) {
                val done = engine.one(u.id)
                assertEquals(done.error?.message, UploadState.COMPLETED, done.state)
                assertStoredObject(done, f)
                // Hashed twice (hashFile above, then addFile), then opened once per part.
                assertEquals(f.name, 2 + done.partsTotal.toInt(), opener.calls[f.name])
            }
        }
    }

    @Test
    fun aKotlinOpenerThatFailsOrHandsOverAPipeFailsOnlyThatUpload() = runBlocking<Unit> {
        val opener = DirectoryOpener(dir)
        val names = listOf("revoked.bin", "gone.bin", "throws.bin", "pipe.bin", "fine.bin")
        val files = names.associateWith { file(it, 5 * MIB + 11) }
        open("uri-faults.db", start = false).use { engine ->
            engine.setConfig(config())
            engine.setFileOpener(opener)
            // A pipe cannot be hashed by positioned reads: refused at add.
            opener.faults["pipe.bin"] = DirectoryOpener.Fault.PIPE
            val pipe = assertThrows<UploaderException.FileUnreadable> {
                runBlocking { engine.addFile(NewFile(DirectoryOpener.uri("pipe.bin"), "t", null, "{}")) }
            }
            assertTrue(pipe.message!!, pipe.message!!.contains("copy the file"))
            opener.faults.clear()
            val added = names.associateWith { engine.addFile(NewFile(DirectoryOpener.uri(it), "t", null, "{}")) }
            // Then the platform's answers change before any part is read.
            opener.faults["revoked.bin"] = DirectoryOpener.Fault.REVOKED
            opener.faults["gone.bin"] = DirectoryOpener.Fault.GONE
            opener.faults["throws.bin"] = DirectoryOpener.Fault.THROWS
            opener.faults["pipe.bin"] = DirectoryOpener.Fault.PIPE
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            val expected = mapOf(
                "revoked.bin" to ErrorCode.FILE_UNREADABLE,
                "gone.bin" to ErrorCode.FILE_NOT_FOUND,
                "throws.bin" to ErrorCode.FILE_UNREADABLE,
                "pipe.bin" to ErrorCode.FILE_UNREADABLE,
            )
            for ((name, code) in expected) {
                val u = engine.one(added.getValue(name).id)
                assertEquals(name, UploadState.FAILED, u.state)
                assertEquals(name, code, u.error?.code)
                assertTrue("$name: ${u.error?.message}", u.error!!.message.contains("copy the file"))
            }
            val fine = engine.one(added.getValue("fine.bin").id)
            assertEquals(UploadState.COMPLETED, fine.state)
            assertStoredObject(fine, files.getValue("fine.bin"))
            // The opener works again: the failed ones resume and finish.
            opener.faults.clear()
            engine.resume(UploadSelector.Transfer("t"))
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            for (name in expected.keys) {
                val u = engine.one(added.getValue(name).id)
                assertEquals(name, UploadState.COMPLETED, u.state)
                assertStoredObject(u, files.getValue(name))
            }
        }
    }

    @Test
    fun aFileRefusedWhileTheDeviceIsLockedWaitsForTheUnlock() = runBlocking<Unit> {
        val opener = DirectoryOpener(dir)
        val f = file("locked.mov", 5 * MIB + 21)
        open("protected.db", start = false).use { engine ->
            engine.setConfig(config())
            engine.setFileOpener(opener)
            val added = engine.addFile(NewFile(DirectoryOpener.uri(f.name), "t", null, "{}"))
            // iOS data protection: locked, the file is refused; not a failure.
            engine.setProtectedDataAvailable(false)
            opener.faults[f.name] = DirectoryOpener.Fault.REVOKED
            assertEquals(IdleReason.WAITING_FOR_UNLOCK, withTimeout(60_000) { engine.runUntilIdle() })
            val waiting = engine.one(added.id)
            assertTrue(waiting.state.toString(), waiting.state == UploadState.INITIALIZED || waiting.state == UploadState.RUNNING)
            assertTrue(waiting.error!!.message, waiting.error!!.message.contains("unlocked"))
            assertEquals(1u, engine.status().waitingForUnlock)
            opener.faults.clear()
            engine.setProtectedDataAvailable(true)
            assertEquals(IdleReason.IDLE, withTimeout(60_000) { engine.runUntilIdle() })
            val done = engine.one(added.id)
            assertEquals(done.error?.message, UploadState.COMPLETED, done.state)
            assertStoredObject(done, f)
        }
    }

    @Test
    fun closingTheUploaderAndTheSubscriptionFreesThem() = runBlocking<Unit> {
        val path = File(dir, "shared.db").path
        val a = UploadEngine.open(path, true)
        val b = UploadEngine.open(path, true)
        a.setConfig(config().apply { notificationText = "{percentage}% of {totalSize}" })
        assertEquals("one engine per path: b sees a's config", "{percentage}% of {totalSize}", b.config()?.notificationText)

        // A closed subscription gets nothing more.
        val rec = Recorder()
        val sub = a.subscribe(rec)
        assertTrue(withTimeout(5_000) { while (rec.snapshot().isEmpty()) delay(5); sub.isActive() })
        sub.close()
        val u = a.addFile(NewFile(file("after-close.bin", 10).path, "t", null, "{}"))
        assertEquals(IdleReason.IDLE, withTimeout(60_000) { a.runUntilIdle() })
        assertEquals(1, rec.snapshot().size)
        assertTrue(rec.snapshot().single() is UploaderEvent.Snapshot)

        val s = a.summary(null)
        assertEquals("100% of 10 B", renderNotification(b.config()!!.notificationText!!, s))

        // Shutting down frees the queue for the next open, in this process or another.
        a.shutdown()
        assertThrows<UploaderException.Shutdown> { runBlocking { b.uploads(UploadSelector.All) } }
        a.close()
        b.close()
        UploadEngine.open(path, true).use { c ->
            assertEquals(UploadState.COMPLETED, c.one(u.id).state)
        }
        // Closing the last reference (without shutdown) frees it as well.
        UploadEngine.open(path, true).use { d -> assertEquals(1, d.uploads(UploadSelector.All).size) }
    }

    /**
     * A part transport as a platform writes one: its own thread, its own
     * HTTP client (HttpURLConnection), reading the staged files and
     * reporting each task's end to the engine. The first submit is refused
     * to prove that errors cross the FFI too.
     */
    class HttpTransport(private val engine: UploadEngine) : PartTransport {
        private val worker = Executors.newSingleThreadExecutor { r -> Thread(r, "kotlin-transport").apply { isDaemon = true } }
        val submitted: MutableList<PartTask> = Collections.synchronizedList(ArrayList())
        val cancelled: MutableList<String> = Collections.synchronizedList(ArrayList())
        @Volatile var refuseNext = true

        override fun submit(task: PartTask) {
            if (refuseNext) {
                refuseNext = false
                throw SubmitException.Refused("session busy")
            }
            check(File(task.filePath).length().toULong() == task.length) { "staged file has the part's length" }
            submitted.add(task)
            worker.execute { engine.reportPartTask(task.taskId, put(task)) }
        }

        override fun cancel(taskId: String) {
            cancelled.add(taskId)
        }

        private fun put(task: PartTask): PartTaskResult = try {
            val c = URI(task.url).toURL().openConnection() as HttpURLConnection
            c.requestMethod = "PUT"
            c.doOutput = true
            c.setFixedLengthStreamingMode(task.length.toLong())
            File(task.filePath).inputStream().use { input -> c.outputStream.use { input.copyTo(it) } }
            val status = c.responseCode
            val body = (if (status >= 400) c.errorStream else c.inputStream)?.use { it.readBytes().decodeToString() } ?: ""
            PartTaskResult.Response(status.toUShort(), c.getHeaderField("ETag"), c.getHeaderField("Retry-After"), body)
        } catch (e: java.io.IOException) {
            PartTaskResult.NoResponse(e.toString())
        }

        fun close() = worker.shutdownNow()
    }

    @Test
    fun aKotlinTransportUploadsHandedOffPartsAcrossTheFfi() = runBlocking<Unit> {
        open("handoff.db", start = false).use { engine ->
            engine.setConfig(config())
            val transport = HttpTransport(engine)
            val budget = (10 * MIB).toULong()
            engine.setPartTransport(transport, HandoffSettings(budget, 900_000uL))
            assertTrue(engine.reconcilePartTasks(listOf("not-ours")) == listOf("not-ours"))
            engine.setPartMode(PartMode.HANDOFF)
            val files = listOf(file("h1.bin", 11 * MIB + 3), file("h2.bin", 5 * MIB), file("h3.bin", 1))
            val added = files.map { engine.addFile(NewFile(it.path, "handoff", null, "{}")) }
            var reason = IdleReason.HANDED_OFF
            withTimeout(60_000) {
                while (true) {
                    reason = engine.runUntilIdle()
                    if (reason != IdleReason.HANDED_OFF) break
                    delay(20)
                }
            }
            assertEquals(IdleReason.IDLE, reason)
            for ((u, f) in added.zip(files)) {
                val done = engine.one(u.id)
                assertEquals(UploadState.COMPLETED, done.state)
                assertStoredObject(done, f)
            }
            val status = engine.status()
            // 3 + 1 + 1 parts, each handed off once, plus the refused submit.
            assertEquals(5, transport.submitted.size)
            assertEquals(6uL, status.tasksHandedOffTotal)
            assertTrue("staging peak ${status.stagingPeak}", status.stagingPeak in 1uL..budget)
            assertEquals(0uL, status.stagedBytes)
            val staging = File(dir, "handoff.db.staging")
            assertEquals(0, staging.listFiles()?.size ?: 0)
            engine.setPartMode(PartMode.DIRECT)
            transport.close()
        }
    }
}
