package com.s3bguploader.core.test

import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import kotlin.system.exitProcess

/** Runs every suite and ends with the line CI reads: `N passed, N failed`. */
fun main() {
    val core = JUnitCore()
    core.addListener(object : RunListener() {
        private val failed = HashSet<Description>()
        private var startedAt = 0L

        override fun testStarted(description: Description) {
            startedAt = System.nanoTime()
        }

        override fun testFailure(failure: Failure) {
            failed.add(failure.description)
            println("FAIL ${failure.description.displayName}")
            println(failure.trace.lines().take(25).joinToString("\n") { "    $it" })
        }

        override fun testFinished(description: Description) {
            val ms = (System.nanoTime() - startedAt) / 1_000_000
            if (description !in failed) println("ok   ${description.methodName} ($ms ms)")
        }
    })
    val result = core.run(
        BindingsUpToDateTest::class.java, UploadEngineTest::class.java, JsonAndTlsTest::class.java, LifecycleTest::class.java,
    )
    val failedCount = result.failureCount
    val passed = result.runCount - failedCount
    println("$passed passed, $failedCount failed")
    exitProcess(if (failedCount == 0 && result.runCount > 0) 0 else 1)
}
