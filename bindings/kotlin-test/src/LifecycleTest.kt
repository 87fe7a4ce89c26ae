package com.s3bguploader.core.test

import com.s3bguploader.core.AppState
import com.s3bguploader.core.Attention
import com.s3bguploader.core.BackgroundRun
import com.s3bguploader.core.ErrorCode
import com.s3bguploader.core.HandoffSettings
import com.s3bguploader.core.NewFile
import com.s3bguploader.core.PartTask
import com.s3bguploader.core.PartTaskResult
import com.s3bguploader.core.PartTransport
import com.s3bguploader.core.RunKind
import com.s3bguploader.core.RunVerdict
import com.s3bguploader.core.StopCause
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.UploadRecord
import com.s3bguploader.core.UploadSelector
import com.s3bguploader.core.UploadState
import com.s3bguploader.core.UploaderConfig
import com.s3bguploader.core.configForBaseUrl
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.AfterClass
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.BeforeClass
import org.junit.Test
import java.io.BufferedReader
import java.io.File
import java.io.PrintWriter
import java.net.URI
import java.nio.file.Files
import java.security.KeyStore
import java.security.cert.CertificateFactory
import java.util.Collections
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import javax.net.ssl.HttpsURLConnection
import javax.net.ssl.SSLContext
import javax.net.ssl.SSLSocketFactory
import javax.net.ssl.TrustManagerFactory
import kotlin.random.Random

/**
 * `https-harness` driven over its stdin: the reference backend and the
 * store that checks presigned signatures, with part PUTs slowed on demand
 * (so a run is still sending when the test stops it) and counted by the
 * store (so "nothing was sent" is seen from the server's side).
 */
class ControlledHarness(dir: File) : AutoCloseable {
    val url: String
    val storeDir: File
    val caPem: String
    private val process: Process
    private val out: BufferedReader
    private val commands: PrintWriter

    init {
        val bin = System.getProperty("s3bgu.httpsHarness") ?: error("-Ds3bgu.httpsHarness is not set")
        val caFile = File(dir, "lifecycle-ca.pem")
        process = ProcessBuilder(bin, caFile.path).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        Runtime.getRuntime().addShutdownHook(Thread { process.destroyForcibly() })
        out = process.inputStream.bufferedReader()
        url = out.readLine()?.removePrefix("backend ")?.trim() ?: error("https-harness exited: ${process.waitFor()}")
        storeDir = File(out.readLine()!!.removePrefix("store ").trim())
        out.readLine() // store-url
        caPem = caFile.readText()
        commands = PrintWriter(process.outputStream, true)
    }

    @Synchronized
    private fun command(line: String): String {
        commands.println(line)
        val answer = out.readLine() ?: error("https-harness exited")
        check(!answer.startsWith("error")) { answer }
        return answer
    }

    /** Every part PUT waits [ms] before the store handles it (0: off). */
    fun delayPuts(ms: Long) = check(command("delay-puts $ms") == "ok")

    /** Part PUTs the store has received since it started. */
    fun partPuts(): Int = command("part-puts").toInt()

    fun objectBytes(key: String): ByteArray = File(storeDir, "uploads/$key").readBytes()

    /** Trusts the harness's private CA, for a Kotlin transport's own HTTPS. */
    fun sslSocketFactory(): SSLSocketFactory {
        val ca = CertificateFactory.getInstance("X.509").generateCertificate(caPem.byteInputStream())
        val ks = KeyStore.getInstance(KeyStore.getDefaultType()).apply {
            load(null)
            setCertificateEntry("harness", ca)
        }
        val tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()).apply { init(ks) }
        return SSLContext.getInstance("TLS").apply { init(null, tmf.trustManagers, null) }.socketFactory
    }

    override fun close() {
        commands.close()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

/**
 * A transport shaped like an iOS background session: tasks made while the
 * app is on screen run at once; while [holding], tasks are kept and not run,
 * as a discretionary session may keep them for hours. [release] runs what
 * is still held (the OS starting them late); a cancelled task never runs.
 */
class SessionLikeTransport(
    private val engine: UploadEngine,
    private val ssl: SSLSocketFactory,
) : PartTransport {
    private val lock = Any()
    private val worker = Executors.newCachedThreadPool { r -> Thread(r, "kotlin-session").apply { isDaemon = true } }
    private var holding = false
    private val held = LinkedHashMap<String, PartTask>()
    val submitted: MutableList<String> = Collections.synchronizedList(ArrayList())
    val ran: MutableSet<String> = Collections.synchronizedSet(HashSet())
    val cancelled: MutableList<String> = Collections.synchronizedList(ArrayList())
    /** Ids of held tasks submitted after the test knew the engine was in the background. */
    val madeInBackground: MutableSet<String> = Collections.synchronizedSet(HashSet())
    @Volatile var backgroundConfirmed = false
    val running = AtomicInteger(0)

    fun hold() = synchronized(lock) { holding = true }

    fun heldIds(): Set<String> = synchronized(lock) { held.keys.toSet() }

    fun release() {
        val tasks = synchronized(lock) {
            holding = false
            held.values.toList().also { held.clear() }
        }
        tasks.forEach(::start)
    }

    override fun submit(task: PartTask) {
        submitted.add(task.taskId)
        synchronized(lock) {
            if (holding) {
                held[task.taskId] = task
                if (backgroundConfirmed) madeInBackground.add(task.taskId)
                return
            }
        }
        start(task)
    }

    override fun cancel(taskId: String) {
        cancelled.add(taskId)
        synchronized(lock) { held.remove(taskId) }
    }

    private fun start(task: PartTask) {
        ran.add(task.taskId)
        running.incrementAndGet()
        worker.execute {
            try {
                engine.reportPartTask(task.taskId, put(task))
            } finally {
                running.decrementAndGet()
            }
        }
    }

    private fun put(task: PartTask): PartTaskResult = try {
        val c = URI(task.url).toURL().openConnection() as HttpsURLConnection
        c.sslSocketFactory = ssl
        c.requestMethod = "PUT"
        c.doOutput = true
        c.setFixedLengthStreamingMode(task.length.toLong())
        File(task.filePath).inputStream().use { input -> c.outputStream.use { input.copyTo(it) } }
        // As `didSendBodyData` would: the body is out, the answer pending.
        engine.reportPartTaskProgress(task.taskId, task.length)
        val status = c.responseCode
        val body = (if (status >= 400) c.errorStream else c.inputStream)?.use { it.readBytes().decodeToString() } ?: ""
        PartTaskResult.Response(status.toUShort(), c.getHeaderField("ETag"), c.getHeaderField("Retry-After"), body)
    } catch (e: java.io.IOException) {
        PartTaskResult.NoResponse(e.toString())
    }

    fun close() = worker.shutdownNow()
}

/**
 * The phone-lifecycle scenarios of issue 24 driven through the generated
 * bindings: the platform reports app state, network and runs; the engine's
 * mode, verdicts and progress are checked after every step, and the store
 * says what was sent.
 */
class LifecycleTest {
    companion object {
        lateinit var h: ControlledHarness
        private val harnessDir: File = Files.createTempDirectory("s3bgu-lifecycle-ca").toFile()

        @BeforeClass @JvmStatic fun startHarness() {
            h = ControlledHarness(harnessDir)
        }

        @AfterClass @JvmStatic fun stopHarness() {
            h.close()
            harnessDir.deleteRecursively()
        }
    }

    private val dir: File = Files.createTempDirectory("s3bgu-lifecycle").toFile().also { it.deleteOnExit() }

    @Before fun fastStore() = h.delayPuts(0)

    private fun file(name: String, size: Int): File =
        File(dir, name).also { it.writeBytes(Random(name.hashCode()).nextBytes(size)) }

    /** One part in flight at a time, so the PUT delay paces a run. */
    private fun config(): UploaderConfig = configForBaseUrl(h.url).apply {
        extraRootCertificatesPem = listOf(h.caPem)
        maxPartsInFlight = 1u
    }

    private fun open(name: String): UploadEngine = UploadEngine.open(File(dir, name).path, false)

    private suspend fun UploadEngine.mode(): String = lifecycleStatus().mode

    private suspend fun UploadEngine.all(): List<UploadRecord> = uploads(UploadSelector.All)

    private suspend fun UploadEngine.completed(): Int = all().count { it.state == UploadState.COMPLETED }

    private suspend fun UploadEngine.queue(files: List<File>): List<UploadRecord> =
        files.map { addFile(NewFile(it.path, "lifecycle", null, "{}")) }

    /** Every upload of the queue is COMPLETED with its file's bytes in the store. */
    private suspend fun UploadEngine.assertAllStored(files: List<File>) {
        val byPath = all().associateBy { it.path }
        assertEquals(files.size, byPath.size)
        for (f in files) {
            val u = byPath.getValue(f.path)
            assertEquals(u.error?.message, UploadState.COMPLETED, u.state)
            assertEquals(f.length().toULong(), u.uploadedBytes)
            assertArrayEquals("object of ${f.name}", f.readBytes(), h.objectBytes(checkNotNull(u.key)))
        }
    }

    private suspend fun UploadEngine.awaitCompleted(n: Int) = withTimeout(60_000) {
        while (true) {
            val all = all()
            all.firstOrNull { it.state == UploadState.FAILED }?.let { throw AssertionError("failed: ${it.error}") }
            if (all.count { it.state == UploadState.COMPLETED } >= n) break
            delay(20)
        }
    }

    /**
     * After a stop: once a PUT the engine had already begun has reached the
     * store (or not), nothing more arrives for well over a PUT's delay, and
     * no upload moves.
     */
    private suspend fun UploadEngine.assertNothingSentFor(ms: Long) {
        delay(300)
        val puts = h.partPuts()
        val before = all().map { Triple(it.id, it.state, it.partsDone) }
        delay(ms)
        assertEquals("part PUTs after the stop", puts, h.partPuts())
        assertEquals("uploads moved after the stop", before, all().map { Triple(it.id, it.state, it.partsDone) })
    }

    private fun background(id: String, kind: RunKind, limitMs: Long? = null) =
        BackgroundRun(id, kind, limitMs?.toULong())

    private fun smallFiles(prefix: String, n: Int) = (0 until n).map { file("$prefix-$it.bin", 20_000 + it) }

    /** Files queued by one engine, which is then closed (the app's process ends). */
    private fun queueAndClose(db: String, files: List<File>) = runBlocking {
        open(db).use { e ->
            e.setConfig(config())
            e.queue(files)
        }
    }

    @Test
    fun openAloneNeverSendsUntilTheNetworkIsReported() = runBlocking<Unit> {
        val f = file("alone.bin", 5 * 1024 * 1024 + 100)
        open("alone.db").use { engine ->
            engine.setConfig(config())
            val u = engine.queue(listOf(f)).single()
            val puts = h.partPuts()
            engine.setAppState(AppState.FOREGROUND, 1u)
            val s = engine.lifecycleStatus()
            assertTrue(s.managed)
            assertEquals(AppState.FOREGROUND, s.state)
            assertFalse(s.networkReported)
            assertEquals("stopped", s.mode)
            delay(1_000)
            val waiting = engine.all().single()
            assertTrue("${waiting.state}", waiting.state != UploadState.COMPLETED)
            assertEquals(0u, waiting.partsDone)
            assertEquals("nothing reached the store", puts, h.partPuts())

            engine.setNetworkState(true, false)
            assertEquals("direct", engine.mode())
            engine.awaitCompleted(1)
            engine.assertAllStored(listOf(f))
            assertEquals(2u, engine.all().single().partsTotal)
            assertEquals("each part PUT once", puts + 2, h.partPuts())
            assertEquals(u.id, engine.all().single().id)
        }
    }

    @Test
    fun androidJobInAFreshProcessStoppedByTheSystemRunsAgain() = runBlocking<Unit> {
        val files = smallFiles("sys", 12)
        queueAndClose("system.db", files)
        open("system.db").use { engine ->
            engine.setConfig(config())
            engine.setNetworkState(true, false)
            engine.setAppState(AppState.BACKGROUND, 1u)
            assertEquals("stopped", engine.mode())
            h.delayPuts(400)
            val puts = h.partPuts()
            val run = async(Dispatchers.Default) {
                engine.runBackground(background("job-1", RunKind.USER_INITIATED_JOB))
            }
            withTimeout(30_000) { while (engine.completed() < 1) delay(20) }
            assertEquals("direct", engine.mode())
            assertFalse("the run is still going", run.isCompleted)

            val stopped = engine.stopBackgroundRun("job-1", StopCause.SYSTEM)
            assertEquals(RunVerdict.RunAgain(0u), stopped)
            assertEquals(RunVerdict.RunAgain(0u), withTimeout(10_000) { run.await() })
            assertEquals("stopped", engine.mode())
            assertTrue(engine.lifecycleStatus().runs.isEmpty())
            engine.assertNothingSentFor(1_500)
            val left = files.size - engine.completed()
            assertTrue("work was left at the stop", left > 0)

            h.delayPuts(0)
            val again = withTimeout(60_000) {
                engine.runBackground(background("job-1", RunKind.USER_INITIATED_JOB))
            }
            assertEquals(RunVerdict.Finished, again)
            assertEquals("stopped", engine.mode())
            engine.assertAllStored(files)
            // The PUT cut by the stop is the only one sent twice.
            val sent = h.partPuts() - puts
            assertTrue("$sent part PUTs for ${files.size} parts", sent in files.size..files.size + 1)
        }
    }

    @Test
    fun androidJobStoppedByThePersonStaysStoppedAcrossARestart() = runBlocking<Unit> {
        val files = smallFiles("user", 12)
        queueAndClose("user.db", files)
        open("user.db").use { engine ->
            engine.setConfig(config())
            engine.setNetworkState(true, false)
            engine.setAppState(AppState.BACKGROUND, 1u)
            h.delayPuts(400)
            val run = async(Dispatchers.Default) {
                engine.runBackground(background("job-2", RunKind.USER_INITIATED_JOB))
            }
            withTimeout(30_000) { while (engine.completed() < 1) delay(20) }
            assertEquals("direct", engine.mode())

            val userStopped = RunVerdict.NeedsUser(Attention.USER_STOPPED)
            assertEquals(userStopped, engine.stopBackgroundRun("job-2", StopCause.USER))
            assertEquals(userStopped, withTimeout(10_000) { run.await() })
            assertEquals("stopped", engine.mode())
            engine.assertNothingSentFor(1_500)
            val unfinished = engine.all().filter { it.state != UploadState.COMPLETED }
            assertTrue("work was left at the stop", unfinished.isNotEmpty())
            for (u in unfinished) {
                assertEquals(UploadState.PAUSED, u.state)
                assertEquals(ErrorCode.USER_STOPPED, u.error?.code)
            }
        }
        // The app restarts: the person's stop holds until an explicit resume.
        open("user.db").use { engine ->
            engine.setConfig(config())
            engine.setNetworkState(true, false)
            engine.setAppState(AppState.BACKGROUND, 1u)
            val paused = engine.all().filter { it.state != UploadState.COMPLETED }
            assertTrue(paused.isNotEmpty())
            assertTrue(paused.all { it.state == UploadState.PAUSED && it.error?.code == ErrorCode.USER_STOPPED })
            val puts = h.partPuts()
            val verdict = withTimeout(5_000) {
                engine.runBackground(background("job-2", RunKind.USER_INITIATED_JOB))
            }
            assertEquals(RunVerdict.NeedsUser(Attention.USER_STOPPED), verdict)
            assertEquals(paused.map { it.id to it.state }, engine.all().filter { it.state != UploadState.COMPLETED }.map { it.id to it.state })
            assertEquals("a run while stopped by the person sends nothing", puts, h.partPuts())

            h.delayPuts(0)
            assertEquals(paused.map { it.id }.sorted(), engine.resume(UploadSelector.All).map { it.id }.sorted())
            val done = withTimeout(60_000) {
                engine.runBackground(background("job-2", RunKind.USER_INITIATED_JOB))
            }
            assertEquals(RunVerdict.Finished, done)
            engine.assertAllStored(files)
        }
    }

    @Test
    fun androidJobWithATimeLimitEndsBeforeItAndNothingIsLost() = runBlocking<Unit> {
        // 12 PUTs of 400 ms one at a time cannot fit in the 3 s limit.
        val files = smallFiles("timeout", 12)
        queueAndClose("timeout.db", files)
        open("timeout.db").use { engine ->
            engine.setConfig(config())
            engine.setNetworkState(true, false)
            engine.setAppState(AppState.BACKGROUND, 1u)
            h.delayPuts(400)
            val began = System.nanoTime()
            val verdict = withTimeout(30_000) {
                engine.runBackground(background("job-3", RunKind.JOB, limitMs = 3_000))
            }
            val ms = (System.nanoTime() - began) / 1_000_000
            assertEquals(RunVerdict.RunAgain(0u), verdict)
            // It keeps a margin (a second for a 3 s limit) and answers before the OS's end.
            assertTrue("the run returned after $ms ms", ms in 1_900 until 3_000)
            assertEquals("stopped", engine.mode())
            assertTrue("work was left", engine.completed() < files.size)
            engine.assertNothingSentFor(1_000)

            h.delayPuts(0)
            val later = withTimeout(60_000) { engine.runBackground(background("job-4", RunKind.JOB)) }
            assertEquals(RunVerdict.Finished, later)
            engine.assertAllStored(files)
        }
    }

    @Test
    fun iosShapedHandOffPreHandsOnScreenAndReclaimsUnstartedTasksOnReturn() = runBlocking<Unit> {
        val files = smallFiles("ios", 10)
        open("ios.db").use { engine ->
            engine.setConfig(config())
            val transport = SessionLikeTransport(engine, h.sslSocketFactory())
            engine.setPartTransport(transport, HandoffSettings())
            engine.queue(files)
            h.delayPuts(500)
            val puts = h.partPuts()

            // On screen: the engine sends one part itself and keeps two with the transport.
            engine.setAppState(AppState.FOREGROUND, 1u)
            engine.setNetworkState(true, false)
            assertEquals("direct", engine.mode())
            // A task made on screen is with the transport while its PUT waits 500 ms.
            var prehanded = 0u
            try {
                withTimeout(30_000) {
                    while (prehanded == 0u) {
                        prehanded = engine.lifecycleStatus().prehanded
                        if (prehanded == 0u) delay(10)
                    }
                }
            } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
                val s = engine.status()
                throw AssertionError(
                    "no part was pre-handed off on screen: transport got ${transport.submitted.size} tasks, " +
                        "${engine.completed()} of ${files.size} uploads completed, staged ${s.stagedBytes} bytes",
                )
            }
            assertTrue(prehanded in 1u..2u)
            val madeOnScreen = transport.submitted.toList()
            assertTrue(madeOnScreen.isNotEmpty())
            assertTrue("tasks made on screen run at once", transport.ran.containsAll(madeOnScreen))

            // Off screen without a run: parts go to the transport, which keeps them.
            transport.hold()
            engine.setAppState(AppState.BACKGROUND, 2u)
            assertEquals("handoff", engine.mode())
            transport.backgroundConfirmed = true
            // Settled: the tasks that ran have ended, the rest are held, and the
            // engine sends nothing itself.
            var seen = -1
            var state = ""
            try {
                withTimeout(30_000) {
                    while (true) {
                        val n = transport.submitted.size
                        val handed = engine.status().tasksHandedOff.toInt()
                        state = "submitted $n, running ${transport.running.get()}, engine holds $handed, " +
                            "held ${transport.heldIds().size}, completed ${engine.completed()}"
                        if (transport.running.get() == 0 && handed == transport.heldIds().size && n == seen) break
                        seen = n
                        delay(1_000)
                    }
                }
            } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
                throw AssertionError("hand-off never settled: $state")
            }
            val held = transport.heldIds()
            val putsHeld = h.partPuts()
            delay(1_000)
            assertEquals("nothing is sent while the tasks are held", putsHeld, h.partPuts())
            assertTrue("parts were handed off in the background", held.isNotEmpty())
            assertTrue(engine.completed() < files.size)

            // Back on screen: unstarted tasks are cancelled and the engine sends their parts.
            // Tasks submitted from here on are made on screen (the window refills): not counted.
            transport.backgroundConfirmed = false
            val madeInBackground = transport.madeInBackground.toSet()
            engine.setAppState(AppState.FOREGROUND, 3u)
            val back = engine.lifecycleStatus()
            assertEquals("direct", back.mode)
            val cancelled = transport.cancelled.toSet()
            assertEquals(transport.cancelled.size, cancelled.size)
            assertTrue("at least one task reclaimed", cancelled.isNotEmpty())
            assertTrue("only held tasks are cancelled: $cancelled vs $held", held.containsAll(cancelled))
            assertTrue(
                "every task made in the background is reclaimed: $cancelled vs $madeInBackground",
                cancelled.containsAll(madeInBackground),
            )
            // Left are only tasks made on screen just before the report (at most the window).
            assertTrue(held.size - cancelled.size <= 2)
            assertEquals(cancelled.size.toULong(), back.reclaimedTotal)
            transport.release()

            engine.awaitCompleted(files.size)
            engine.assertAllStored(files)
            assertTrue("a cancelled task never runs", transport.ran.none { it in cancelled })
            assertEquals(cancelled.size.toULong(), engine.lifecycleStatus().reclaimedTotal)
            val status = engine.status()
            assertEquals(transport.submitted.size.toULong(), status.tasksHandedOffTotal)
            assertEquals(0u, status.tasksHandedOff)
            // Each part once, but for one of the engine's own PUTs cut when the app left.
            val sent = h.partPuts() - puts
            assertTrue("$sent part PUTs for ${files.size} parts", sent in files.size..files.size + 1)
            transport.close()
        }
    }

    @Test
    fun lateAndRepeatedTransitionsAreIgnored() = runBlocking<Unit> {
        val f = file("order.bin", 30_000)
        open("order.db").use { engine ->
            engine.setConfig(config())
            engine.queue(listOf(f))
            engine.setNetworkState(true, false)
            val puts = h.partPuts()
            engine.setAppState(AppState.BACKGROUND, 2u)
            assertEquals("stopped", engine.mode())
            engine.setAppState(AppState.FOREGROUND, 1u)
            var s = engine.lifecycleStatus()
            assertEquals("a late FOREGROUND changes nothing", "stopped", s.mode)
            assertEquals(AppState.BACKGROUND, s.state)
            assertEquals(1uL, s.staleTransitions)
            engine.setAppState(AppState.BACKGROUND, 2u)
            s = engine.lifecycleStatus()
            assertEquals("stopped", s.mode)
            assertEquals(2uL, s.staleTransitions)
            engine.setAppState(AppState.FOREGROUND, 2u)
            s = engine.lifecycleStatus()
            assertEquals("stopped", s.mode)
            assertEquals(3uL, s.staleTransitions)
            delay(500)
            assertEquals("nothing sent while stopped", puts, h.partPuts())

            engine.setAppState(AppState.FOREGROUND, 3u)
            s = engine.lifecycleStatus()
            assertEquals("direct", s.mode)
            assertEquals(3uL, s.staleTransitions)
            engine.awaitCompleted(1)
            engine.assertAllStored(listOf(f))
        }
    }

    @Test
    fun progressOfARunOnlyGrowsAndAddsUp() = runBlocking<Unit> {
        // The multipart file first, so the last PUT is a small one, out
        // whole while the store holds it: the run's done bytes reach the total.
        val files = listOf(file("p-big.bin", 10 * 1024 * 1024 + 1000), file("p-a.bin", 30_000), file("p-b.bin", 31_000))
        val queued = files.sumOf { it.length() }.toULong()
        open("progress.db").use { engine ->
            engine.setConfig(config())
            engine.queue(files)
            engine.setNetworkState(true, false)
            engine.setAppState(AppState.BACKGROUND, 1u)
            h.delayPuts(800)
            val run = async(Dispatchers.Default) {
                engine.runBackground(background("job-5", RunKind.USER_INITIATED_JOB))
            }
            withTimeout(10_000) { while (engine.lifecycleStatus().runs.none { it.id == "job-5" }) delay(5) }
            assertEquals("direct", engine.mode())
            var last = 0uL
            var samples = 0
            withTimeout(60_000) {
                while (!run.isCompleted) {
                    val before = engine.status().bytesRemaining
                    val p = engine.backgroundProgress("job-5")
                    val after = engine.status().bytesRemaining
                    // Once the run has ended its id is unknown (0 done): only
                    // answers given while it was under way count.
                    if (engine.lifecycleStatus().runs.none { it.id == "job-5" }) break
                    assertTrue("done ${p.doneBytes} after $last", p.doneBytes >= last)
                    assertTrue("done ${p.doneBytes} of total ${p.totalBytes}", p.totalBytes >= p.doneBytes)
                    assertTrue("total ${p.totalBytes} over $queued queued", p.totalBytes <= queued)
                    // total = done + what the active uploads still have to send.
                    val left = p.totalBytes - p.doneBytes
                    assertTrue("left $left between $after and $before", left in after..before)
                    assertTrue(p.title.isNotEmpty() && p.text.isNotEmpty())
                    last = p.doneBytes
                    samples++
                    delay(100)
                }
            }
            assertEquals(RunVerdict.Finished, run.await())
            assertTrue("$samples samples", samples >= 10)
            assertEquals("done bytes reach what was queued for the run", queued, last)
            engine.assertAllStored(files)
        }
    }
}
